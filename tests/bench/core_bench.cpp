// Google Benchmark: the per-request costs on joingate's hot paths — request-head parsing,
// header stamping/stripping, version parsing, the admission decision (pure and through
// the gate's per-caller cache), and the /joingate/v1/version document.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "admission/decision.hpp"
#include "admission/gate.hpp"
#include "admission/version.hpp"
#include "admission/version_doc.hpp"
#include "proxy/http.hpp"

using namespace joingate;

namespace {

const std::string kRaftStream =
    "GET http://10.0.0.12:2380/raft/stream/msgapp/8e9e3a4b5c6d7e8f HTTP/1.1\r\n"
    "Host: 10.0.0.12:2380\r\nUser-Agent: etcdserver/3.4.23\r\nX-Etcd-Cluster-Id: 1c2d3e4f5a6b7c8d\r\n"
    "X-Min-Cluster-Version: 3.0.0\r\nX-Peerurls: http://10.0.0.11:2380\r\nX-Raft-To: 8e9e3a4b5c6d7e8f\r\n"
    "X-Server-From: 1a2b3c4d5e6f7a8b\r\nX-Server-Version: 3.4.23\r\nAccept-Encoding: gzip\r\n\r\n";

void BM_ParseRequestHead(benchmark::State& state) {
    http::Head head;
    http::HeadError err;
    http::Limits limits;
    for (auto _ : state) {
        auto r = http::parse_request(kRaftStream, limits, head, err);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kRaftStream.size()));
}
BENCHMARK(BM_ParseRequestHead);

void BM_StampAndStrip(benchmark::State& state) {
    http::Head head;
    http::HeadError err;
    http::parse_request(kRaftStream, {}, head, err);
    http::AbsoluteTarget t;
    http::parse_absolute_target(head.target, t);
    http::Stamp stamp{"etcd-0", "3.4.23", "1-1"};
    std::string out;
    out.reserve(1024);
    for (auto _ : state) {
        http::write_request_head(out, head, t.origin, t.authority, &stamp);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_StampAndStrip);

void BM_ParseVersion(benchmark::State& state) {
    for (auto _ : state) {
        auto v = admission::parse_version("v3.5.0-rc.1+build.7");
        benchmark::DoNotOptimize(v);
    }
}
BENCHMARK(BM_ParseVersion);

struct DecisionFixture {
    admission::Version leader = *admission::parse_version("3.4.23");
    admission::Version joiner = *admission::parse_version("3.5.0");
    std::vector<admission::MemberProtocol> members{
        {"etcd-0", {1, 1}, &leader}, {"etcd-1", {1, 1}, &leader}, {"etcd-2", {1, 1}, &leader}};
    admission::ClusterFacts facts() const {
        admission::ClusterFacts f;
        f.leader_version = &leader;
        f.leader_member = "etcd-0";
        f.members = members;
        f.epoch = 1;
        return f;
    }
};

void BM_Decide(benchmark::State& state) {
    DecisionFixture fx;
    admission::Rules rules;
    rules.policy = static_cast<config::Policy>(state.range(0));
    auto facts = fx.facts();
    admission::Subject who{"etcd-3", &fx.joiner, {1, 1}};
    auto now = std::chrono::system_clock::now();
    for (auto _ : state) {
        auto d = admission::decide(rules, admission::Side::inbound, who, facts, {}, now, false);
        benchmark::DoNotOptimize(d);
    }
}
BENCHMARK(BM_Decide)->DenseRange(0, 3)->ArgName("policy");

void BM_GateJudgeCached(benchmark::State& state) {
    DecisionFixture fx;
    config::Admission adm;
    admission::Gate gate(adm);
    auto facts = fx.facts();
    auto now = std::chrono::system_clock::now();
    gate.judge(admission::Side::inbound, "etcd-3", "3.5.0", {1, 1}, facts, now);
    for (auto _ : state) {
        auto d = gate.judge(admission::Side::inbound, "etcd-3", "3.5.0", {1, 1}, facts, now);
        benchmark::DoNotOptimize(d);
    }
}
BENCHMARK(BM_GateJudgeCached);

void BM_VersionDocJson(benchmark::State& state) {
    admission::VersionDoc doc;
    doc.member = "etcd-0";
    doc.version = "3.4.23";
    doc.role = admission::Role::leader;
    doc.leader = admission::MemberVersion{"etcd-0", "3.4.23"};
    doc.admitted = true;
    doc.mode = "both";
    doc.policy = "not-older-than-leader";
    doc.profile = "etcd3";
    for (int i = 0; i < 5; ++i) doc.admitted_members.push_back({"etcd-" + std::to_string(i), "3.4.23"});
    for (auto _ : state) {
        auto json = admission::to_json(doc);
        auto back = admission::parse_version_doc(json);
        benchmark::DoNotOptimize(back);
    }
}
BENCHMARK(BM_VersionDocJson);

} // namespace
