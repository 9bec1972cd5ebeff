// The control plane: probes, the cluster view, the gate and the follower driver.
#include "proxy/control.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <random>

#include "admission/version_doc.hpp"
#include "proxy/log.hpp"
#include "proxy/upstream.hpp"

namespace joingate::proxy {

namespace json = boost::json;
using admission::Side;
using SysClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

namespace {

// The value at a JSON pointer as text (strings as is, numbers and booleans printed).
std::optional<std::string> json_value(std::string_view body, const std::string& pointer) {
    if (pointer.empty()) {
        std::string v(body);
        while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) v.pop_back();
        while (!v.empty() && (v.front() == ' ' || v.front() == '"')) v.erase(0, 1);
        if (!v.empty() && v.back() == '"') v.pop_back();
        return v.empty() ? std::nullopt : std::optional<std::string>(v);
    }
    boost::system::error_code ec;
    json::value doc = json::parse(body, ec);
    if (ec) return std::nullopt;
    const json::value* v = doc.find_pointer(pointer, ec);
    if (ec || !v) return std::nullopt;
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_int64()) return std::to_string(v->as_int64());
    if (v->is_uint64()) return std::to_string(v->as_uint64());
    if (v->is_bool()) return v->as_bool() ? "true" : "false";
    return std::nullopt;
}

config::ProtocolRange parse_stamp_protocol(std::string_view text) {
    // X-Joingate-Protocol: min-max
    config::ProtocolRange r;
    auto dash = text.find('-');
    if (dash == std::string_view::npos) return r;
    unsigned a = 0, b = 0;
    auto s1 = text.substr(0, dash), s2 = text.substr(dash + 1);
    if (std::from_chars(s1.data(), s1.data() + s1.size(), a).ec != std::errc{} ||
        std::from_chars(s2.data(), s2.data() + s2.size(), b).ec != std::errc{} || a > b)
        return r;
    return {a, b};
}

std::string protocol_text(config::ProtocolRange p) {
    return std::to_string(p.min) + "-" + std::to_string(p.max);
}

void append_kv(std::string& out, std::string_view k, std::string_view v, bool first = false) {
    if (!first) out += ",";
    log::append_json_string(out, k);
    out += ":";
    log::append_json_string(out, v);
}

} // namespace

Control::Control(asio::io_context& ioc, metrics::Metrics& metrics, const std::shared_ptr<const Runtime>& rt)
    : ioc_(ioc), metrics_(metrics), rt_(rt), profile_(config::make_profile(*rt->config)),
      gate_(rt->config->admission), started_(SteadyClock::now()), view_wake_(ioc),
      follower_timer_(ioc),
      is_leader_(metrics.families().member_is_leader.Add({})),
      join_waiting_(metrics.families().join_waiting.Add({})),
      join_admitted_(metrics.families().join_admitted.Add({})),
      join_retries_(metrics.families().join_retries.Add({})),
      join_wait_seconds_(metrics.families().join_wait_seconds.Add(
          {}, prometheus::Histogram::BucketBoundaries{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600})),
      overrides_active_(metrics.families().overrides_active.Add({})) {
    const auto& c = *rt->config;
    std::vector<std::string> peers;
    for (const auto& p : c.cluster.peers) peers.push_back(p.text());
    view_.set_peers(std::move(peers));
    std::random_device rd;
    follower_ = std::make_unique<admission::Follower>(admission::FollowerSettings::from(c), gate_,
                                                      admission::seeded_random((std::uint64_t(rd()) << 32) ^ rd()));
    if (c.member.version != "auto") own_version_ = admission::parse_version(c.member.version);
    identity_ = std::make_shared<Identity>(Identity{c.member.name, own_version_ ? own_version_->text() : "",
                                                    protocol_text(c.member.protocol)});
    follower_timer_.expires_at(SteadyClock::time_point::max());
    for (int s = 0; s < 3; ++s)
        refused_[s] = &metrics.families().admission_decisions.Add(
            {{"side", admission::to_string(static_cast<Side>(s))}, {"decision", "refused_request"}, {"reason", "cached"}});
}

Control::~Control() { stopping_ = true; }

admission::Now Control::now() const { return {SteadyClock::now(), SysClock::now()}; }

void Control::start() {
    auto n = now();
    if (own_version_) handle(follower_->set_own_version(own_version_, n));
    join_waiting_.Set(1);
    handle(follower_->start(n));
    asio::co_spawn(ioc_, probe_loop(), asio::detached);
    asio::co_spawn(ioc_, view_loop(), asio::detached);
    asio::co_spawn(ioc_, follower_timer_loop(), asio::detached);
}

void Control::reconfigured() {
    const auto& c = rt().config;
    profile_ = config::make_profile(*c);
    for (const auto& e : gate_.configure(c->admission)) log::warn("override ignored", {{"error", e}});
    std::vector<std::string> peers;
    for (const auto& p : c->cluster.peers) peers.push_back(p.text());
    view_.set_peers(std::move(peers));
    if (c->member.version != "auto") set_own_version(admission::parse_version(c->member.version));
    handle(follower_->on_config(admission::FollowerSettings::from(*c), now()));
}

// ---- local probes ----

void Control::set_own_version(std::optional<admission::Version> v) {
    if (!v) return; // a failed probe keeps the last known version
    if (own_version_ && *own_version_ == *v) return;
    log::info("member version", {{"member", rt().config->member.name},
                                 {"version", v->text()},
                                 {"previous", own_version_ ? own_version_->text() : "unknown"}});
    own_version_ = v;
    identity_ = std::make_shared<Identity>(Identity{identity_->member, v->text(), identity_->protocol});
    handle(follower_->set_own_version(own_version_, now()));
}

asio::awaitable<void> Control::probe_loop() {
    asio::steady_timer t(ioc_);
    const auto timeout = std::chrono::milliseconds(2000);
    for (;;) {
        auto snapshot = rt_;
        const auto& c = *snapshot->config;
        if (c.member.version == "auto" && profile_.version_probe) {
            auto p = *profile_.version_probe;
            auto r = co_await fetch<PlainStream>(ioc_, p.host, nullptr, p.method, p.path, p.body, timeout);
            std::optional<std::string> value;
            if (r.status == 200) value = json_value(r.body, p.pointer);
            std::string err;
            if (value) {
                auto v = admission::parse_version(*value, &err);
                if (v) set_own_version(v);
            }
            if (!value || !err.empty()) {
                std::string why = r.status == 0 ? r.error
                                  : value       ? err
                                                : "no version at " + p.path + " " + p.pointer;
                if (why != probe_error_) log::warn("version probe failed", {{"error", why}});
                probe_error_ = why;
            } else {
                probe_error_.clear();
            }
        }
        if (profile_.leader_probe) {
            auto p = *profile_.leader_probe;
            auto r = co_await fetch<PlainStream>(ioc_, p.host, nullptr, p.method, p.path, p.body, timeout);
            admission::Role role = admission::Role::unknown;
            if (r.status == 200) {
                auto value = json_value(r.body, p.pointer);
                std::optional<std::string> expected =
                    profile_.leader_expected_pointer.empty()
                        ? std::optional<std::string>(profile_.leader_expected)
                        : json_value(r.body, profile_.leader_expected_pointer);
                if (value && expected)
                    role = *value == *expected ? admission::Role::leader : admission::Role::follower;
            }
            if (role != role_)
                log::info("member role", {{"role", admission::to_string(role)},
                                          {"previous", admission::to_string(role_)}});
            role_ = role;
            is_leader_.Set(role_ == admission::Role::leader ? 1 : 0);
        }
        t.expires_after(c.member.probe_interval);
        auto [ec] = co_await t.async_wait(nothrow);
        if (ec || stopping_) co_return;
    }
}

// ---- the cluster view ----

asio::awaitable<void> Control::view_round() {
    auto snapshot = rt_;
    const auto& peers = snapshot->config->cluster.peers;
    struct Result {
        FetchResult r;
    };
    std::vector<Result> results(peers.size());
    std::size_t remaining = peers.size();
    asio::steady_timer latch(ioc_, SteadyClock::time_point::max());
    auto timeout = std::min<std::chrono::milliseconds>(snapshot->config->cluster.view_interval,
                                                       std::chrono::milliseconds(3000));
    for (std::size_t i = 0; i < peers.size(); ++i) {
        asio::co_spawn(
            ioc_,
            [&, i]() -> asio::awaitable<void> {
                results[i].r = co_await fetch<TlsStream>(ioc_, peers[i], snapshot->tls.client.get(), "GET",
                                                         "/joingate/v1/version", {}, timeout);
                if (--remaining == 0) latch.cancel();
            },
            asio::detached);
    }
    if (remaining) co_await latch.async_wait(nothrow);
    auto wall = SysClock::now();
    for (std::size_t i = 0; i < peers.size(); ++i) {
        auto addr = peers[i].text();
        auto& r = results[i].r;
        if (r.status != 200) {
            view_.on_unreachable(addr, r.status ? "status " + std::to_string(r.status) : r.error);
            continue;
        }
        std::string err;
        auto doc = admission::parse_version_doc(r.body, &err);
        if (!doc) {
            view_.on_unreachable(addr, "bad version document: " + err);
            continue;
        }
        if (auto n = gate_.merge(doc->admitted_members))
            log::debug("admitted members learned", {{"from", addr}, {"new", n}});
        targets_[addr] = Target{doc->member, doc->version, protocol_text(doc->protocol), SteadyClock::now()};
        view_.on_answer(addr, std::move(*doc), wall);
    }
    publish_view_metrics();
}

asio::awaitable<void> Control::view_loop() {
    for (;;) {
        co_await view_round();
        if (stopping_) co_return;
        // A try the follower asked for; and every round once admitted, so that /readyz,
        // /status and the follower decisions keep saying what the policy says now (in
        // modes that do not hold the member back, that is how would_reject shows).
        if (follower_wants_view_ || follower_->admitted()) {
            follower_wants_view_ = false;
            auto va = admission::ViewAnswer::from(view_, rt().config->member.name);
            handle(va.others_reachable == 0 && view_.reachable_count() == 0 && !va.complete
                       ? follower_->on_no_leader(now())
                       : follower_->on_view(va, now()));
            account_follower();
        }
        for (const auto* o : gate_.take_newly_expired(SysClock::now()))
            log::warn("override expired, ignored", {{"member", o->member}, {"line", o->line}, {"reason", o->reason}});
        overrides_active_.Set(static_cast<double>(gate_.overrides_active(SysClock::now())));
        if (follower_wants_view_) continue; // a try was asked for while this round ran
        view_wake_.expires_after(rt().config->cluster.view_interval);
        co_await view_wake_.async_wait(nothrow); // cancelled early when the follower wants a try
        if (stopping_) co_return;
    }
}

void Control::publish_view_metrics() {
    auto& f = metrics_.families();
    auto leader = view_.leader();
    if (leader_info_) f.leader_info.Remove(leader_info_);
    leader_info_ = nullptr;
    if (leader) {
        leader_info_ = &f.leader_info.Add({{"member", leader->member}, {"version", leader->version}});
        leader_info_->Set(1);
    }
    for (auto* g : cluster_members_) f.cluster_members.Remove(g);
    cluster_members_.clear();
    for (const auto& vc : view_.members_per_version()) {
        auto& g = f.cluster_members.Add({{"version", vc.version}});
        g.Set(static_cast<double>(vc.members));
        cluster_members_.push_back(&g);
    }
}

// ---- the follower ----

void Control::handle(admission::Action a) {
    using K = admission::ActionKind;
    auto st = follower_->status(SteadyClock::now());
    if (st.tries > tries_seen_) {
        join_retries_.Increment(st.tries - tries_seen_);
        tries_seen_ = st.tries;
    }
    switch (a.kind) {
    case K::none: break;
    case K::probe_now:
        follower_wants_view_ = true;
        view_wake_.cancel();
        break;
    case K::sleep_until:
        follower_timer_.expires_at(a.until); // cancels the loop's wait, which re-waits
        log::info("waiting to join",
                  {{"event", "admission"}, {"side", "follower"},
                   {"reason", st.reason ? admission::to_string(*st.reason) : "leader_unknown"},
                   {"member_version", st.member_version},
                   {"leader", st.leader ? st.leader->member : ""},
                   {"leader_version", st.leader ? st.leader->version : ""},
                   {"next_try_in_ms", st.next_try_in ? static_cast<long long>(st.next_try_in->count()) : 0LL},
                   {"tries", st.tries}});
        break;
    case K::admitted: {
        join_waiting_.Set(0);
        join_admitted_.Set(1);
        if (st.waited) join_wait_seconds_.Observe(std::chrono::duration<double>(*st.waited).count());
        log::info("admitted", {{"event", "admission"}, {"side", "follower"},
                               {"member", st.member}, {"member_version", st.member_version},
                               {"reason", st.reason ? admission::to_string(*st.reason) : ""},
                               {"leader", st.leader ? st.leader->member : ""},
                               {"leader_version", st.leader ? st.leader->version : ""},
                               {"would_reject", st.would_reject}, {"fail_open", st.fail_open},
                               {"bootstrap", st.bootstrap}, {"tries", st.tries}});
        break;
    }
    case K::exit_with:
        log::error("giving up on joining", {{"event", "admission"}, {"side", "follower"},
                                            {"reason", admission::to_string(a.reason)},
                                            {"member_version", st.member_version},
                                            {"on_reject", config::to_string(rt().config->admission.on_reject)}});
        if (rt().config->admission.on_reject == config::OnReject::exit) {
            exit_requested_ = true;
            ioc_.stop();
        }
        break;
    }
    if (a.kind != K::admitted && !follower_->admitted()) {
        join_waiting_.Set(1);
        join_admitted_.Set(0);
    }
}

asio::awaitable<void> Control::follower_timer_loop() {
    for (;;) {
        auto [ec] = co_await follower_timer_.async_wait(nothrow);
        if (stopping_) co_return;
        if (ec) continue; // re-armed
        follower_timer_.expires_at(SteadyClock::time_point::max());
        handle(follower_->on_timer(now()));
    }
}

bool Control::follower_enforced() const {
    return admission::enforces(rt().config->admission.mode, Side::follower);
}

bool Control::admitted() const { return follower_->admitted(); }

asio::awaitable<bool> Control::hold(std::chrono::milliseconds hold) {
    // Held requests are rare (a member waiting to join): a short poll keeps this simple.
    asio::steady_timer t(ioc_);
    auto until = SteadyClock::now() + hold;
    while (!follower_->admitted() && !stopping_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now());
        if (left <= std::chrono::milliseconds(0)) break;
        t.expires_after(std::min(left, std::chrono::milliseconds(50)));
        co_await t.async_wait(nothrow);
    }
    co_return follower_->admitted();
}

// ---- the gate ----

void Control::record(Side side, std::string_view who, std::string_view version, const admission::Decision& d) {
    const char* label = admission::decision_label(d);
    metrics_.families()
        .admission_decisions.Add({{"side", admission::to_string(side)}, {"decision", label},
                                  {"reason", admission::to_string(d.reason)}})
        .Increment();
    auto leader = view_.leader();
    const auto& c = *rt().config;
    auto level = d.blocks() || d.would_reject || d.override_used ? log::Level::warn : log::Level::info;
    if (log::enabled(level))
        log::write(level, "admission decision",
                   {{"event", "admission"}, {"side", admission::to_string(side)}, {"caller", who},
                    {"caller_version", version.empty() ? "unknown" : version},
                    {"leader", leader ? leader->member : ""},
                    {"leader_version", leader ? leader->version : "unknown"},
                    {"policy", config::to_string(c.admission.policy)},
                    {"mode", config::to_string(c.admission.mode)}, {"decision", label},
                    {"reason", admission::to_string(d.reason)},
                    {"override", d.override_used ? d.override_used->reason : std::string()},
                    {"observe", c.admission.mode == config::Mode::observe},
                    {"fail_open", d.fail_open}, {"remembered", d.remembered}});
    std::string e = "{";
    append_kv(e, "side", admission::to_string(side), true);
    append_kv(e, "member", who);
    append_kv(e, "version", version);
    append_kv(e, "decision", label);
    append_kv(e, "reason", admission::to_string(d.reason));
    append_kv(e, "leader_version", leader ? leader->version : "");
    auto t = SysClock::to_time_t(SysClock::now());
    append_kv(e, "at", config::format_rfc3339(SysClock::from_time_t(t)));
    e += "}";
    recent_.push_back(std::move(e));
    if (recent_.size() > 20) recent_.pop_front();
}

// The follower side's decision about the local member, as one log line and one count per
// change (a wait retried with the same reason is not a new decision).
void Control::account_follower() {
    const auto& d = follower_->last_decision();
    if (!d) return;
    const auto& v = follower_->own_version();
    std::string version = v ? v->text() : std::string();
    if (!repeated(Side::follower, rt().config->member.name, version, *d))
        record(Side::follower, rt().config->member.name, version, *d);
}

void Control::count_refused(Side side) { refused_[static_cast<int>(side)]->Increment(); }

bool Control::repeated(Side side, std::string_view who, std::string_view version, const admission::Decision& d) {
    auto& last = last_logged_[static_cast<int>(side)];
    std::string key = std::string(version) + "|" + admission::decision_label(d) + "|" + admission::to_string(d.reason);
    auto [it, inserted] = last.try_emplace(std::string(who), key);
    if (inserted) {
        if (last.size() > 4096) { // callers are cluster members: a handful in practice
            last.clear();
            last.emplace(std::string(who), key);
        }
        return false;
    }
    if (it->second == key && !d.override_used) return true;
    it->second = std::move(key);
    return false;
}

void Control::account(Side side, std::string_view who, std::string_view version, const admission::Decision& d) {
    if (!d.cached && !repeated(side, who, version, d)) record(side, who, version, d);
    else if (d.blocks()) count_refused(side);
}

admission::Decision Control::judge_inbound(std::string_view member, std::string_view version,
                                           std::string_view protocol) {
    auto d = gate_.judge(Side::inbound, member, version, parse_stamp_protocol(protocol), view_.facts(),
                         SysClock::now());
    account(Side::inbound, member, version, d);
    return d;
}

std::string Control::learn_target(const std::string& authority, const http::Head& resp,
                                  std::string_view judged_member, std::string_view judged_version) {
    auto member = resp.get("x-joingate-member");
    auto version = resp.get("x-joingate-version");
    if (member.empty()) return {};
    auto& t = targets_[authority];
    t.seen = SteadyClock::now();
    if (t.member != member || t.version != version) {
        t.member = std::string(member);
        t.version = std::string(version);
        t.protocol = std::string(resp.get("x-joingate-protocol"));
    }
    // Compared with what this request was judged with, not with the cache: another
    // request's response may have updated the cache while this one was on its way.
    if (member == judged_member && version == judged_version) return {};
    // The request was judged with what was known before: a raft stream opened to a member
    // whose sidecar just restarted at a refused version must not be established.
    auto d = gate_.judge(Side::outbound, t.member, t.version, parse_stamp_protocol(t.protocol), view_.facts(),
                         SysClock::now());
    account(Side::outbound, t.member, t.version, d);
    if (!d.blocks()) return {};
    return refusal_detail(d, t.member, t.version);
}

std::string Control::refusal_detail(const admission::Decision& d, std::string_view member,
                                    std::string_view version) {
    return std::string(admission::to_string(d.reason)) + ": member " +
           std::string(member.empty() ? "(unnamed)" : member) + " at version " +
           std::string(version.empty() ? "unknown" : version) + " may not join";
}

asio::awaitable<std::optional<admission::Decision>> Control::judge_outbound(const std::string& authority,
                                                                            const config::HostPort& target,
                                                                            std::string* error, std::string* who,
                                                                            std::string* version) {
    auto it = targets_.find(authority);
    auto fresh = 2 * rt().config->cluster.view_interval + std::chrono::seconds(5);
    if (it == targets_.end() || SteadyClock::now() - it->second.seen > fresh) {
        auto snapshot = rt_;
        auto r = co_await fetch<TlsStream>(ioc_, target, snapshot->tls.client.get(), "GET",
                                           "/joingate/v1/version", {}, snapshot->config->limits.connect_timeout);
        std::string err;
        auto doc = r.status == 200 ? admission::parse_version_doc(r.body, &err) : std::nullopt;
        if (!doc && r.status == 0) {
            *error = r.error; // not reachable: forwarding would fail the same way
            co_return std::nullopt;
        }
        if (doc) {
            it = targets_.insert_or_assign(authority, Target{doc->member, doc->version, protocol_text(doc->protocol),
                                                             SteadyClock::now()}).first;
        } else {
            // It answers mutual TLS but not as a joingate (a member not behind joingate yet,
            // or another proxy): its version is unknown, and the fail mode and admission mode
            // decide (observe and fail = "open" let it through). Remembered like an answer,
            // so that etcd's retries do not probe it again on every request.
            log::warn("target has no joingate version endpoint; its version is unknown",
                      {{"target", authority},
                       {"error", r.status != 200 ? "answered " + std::to_string(r.status) : "bad version document: " + err}});
            it = targets_.insert_or_assign(authority, Target{authority, "", "", SteadyClock::now()}).first;
        }
    }
    const auto& t = it->second;
    auto d = gate_.judge(Side::outbound, t.member, t.version, parse_stamp_protocol(t.protocol), view_.facts(),
                         SysClock::now());
    account(Side::outbound, t.member, t.version, d);
    if (who) *who = t.member;
    if (version) *version = t.version;
    co_return d;
}

// ---- documents ----

std::string Control::version_json() const {
    const auto& c = *rt().config;
    admission::VersionDoc doc;
    doc.member = c.member.name;
    doc.version = own_version_ ? own_version_->text() : "";
    doc.protocol = c.member.protocol;
    doc.role = role_;
    if (auto l = view_.leader()) doc.leader = *l;
    doc.admitted = follower_->admitted();
    doc.mode = config::to_string(c.admission.mode);
    doc.policy = config::to_string(c.admission.policy);
    doc.profile = config::to_string(c.member.profile);
    doc.admitted_members = gate_.ledger().published();
    auto st = follower_->status(SteadyClock::now());
    if (st.reason) doc.reason = admission::to_string(*st.reason);
    doc.joingate = JOINGATE_VERSION;
    return admission::to_json(doc);
}

std::string Control::readiness_reason() const {
    auto st = follower_->status(SteadyClock::now());
    return st.reason ? admission::to_string(*st.reason) : "leader_unknown";
}

std::pair<int, std::string> Control::readyz_json() const {
    auto st = follower_->status(SteadyClock::now());
    std::string out = "{\"admitted\":";
    out += st.admitted ? "true" : "false";
    append_kv(out, "state", admission::to_string(st.state));
    append_kv(out, "reason", st.reason ? admission::to_string(*st.reason) : "leader_unknown");
    append_kv(out, "member", st.member);
    append_kv(out, "member_version", st.member_version);
    append_kv(out, "leader", st.leader ? st.leader->member : "");
    append_kv(out, "leader_version", st.leader ? st.leader->version : "");
    out += ",\"tries\":" + std::to_string(st.tries);
    if (st.next_try_in) out += ",\"next_try_in_ms\":" + std::to_string(st.next_try_in->count());
    if (st.would_reject) out += ",\"would_reject\":true";
    if (st.fail_open) out += ",\"fail_open\":true";
    out += "}";
    return {st.admitted ? 200 : 503, out};
}

std::string Control::status_json() const {
    const auto& c = *rt().config;
    auto wall = SysClock::now();
    std::string out = "\"admission\":{";
    append_kv(out, "mode", config::to_string(c.admission.mode), true);
    append_kv(out, "policy", config::to_string(c.admission.policy));
    append_kv(out, "fail", config::to_string(c.admission.fail));
    append_kv(out, "role", admission::to_string(role_));
    if (!probe_error_.empty()) append_kv(out, "probe_error", probe_error_);
    out += ",\"follower\":" + readyz_json().second;
    out += ",\"overrides\":[";
    bool first = true;
    for (const auto& o : gate_.overrides()) {
        if (!first) out += ",";
        first = false;
        out += "{";
        append_kv(out, "member", o.member, true);
        append_kv(out, "version", o.version ? o.version->text() : "");
        append_kv(out, "until", config::format_rfc3339(o.until));
        append_kv(out, "reason", o.reason);
        out += std::string(",\"active\":") + (o.active(wall) ? "true" : "false") + "}";
    }
    out += "],\"recent_decisions\":[";
    first = true;
    for (const auto& e : recent_) {
        if (!first) out += ",";
        first = false;
        out += e;
    }
    out += "]},\"cluster\":{";
    auto leader = view_.leader();
    append_kv(out, "leader", leader ? leader->member : "", true);
    append_kv(out, "leader_version", leader ? leader->version : "");
    if (auto p = view_.protocol()) out += ",\"protocol\":" + std::to_string(*p);
    if (auto b = view_.upgrade_blocker(c.admission.policy)) append_kv(out, "upgrade_blocked_by", *b);
    out += ",\"members\":[";
    first = true;
    for (const auto& p : view_.peers()) {
        if (!first) out += ",";
        first = false;
        out += "{";
        append_kv(out, "address", p.address, true);
        append_kv(out, "member", p.doc ? p.doc->member : "");
        append_kv(out, "version", p.doc ? p.doc->version : "");
        append_kv(out, "protocol", p.doc ? protocol_text(p.doc->protocol) : "");
        append_kv(out, "role", p.doc ? admission::to_string(p.doc->role) : "unknown");
        out += std::string(",\"admitted\":") + (p.doc && p.doc->admitted ? "true" : "false");
        out += std::string(",\"reachable\":") + (p.reachable ? "true" : "false");
        if (!p.error.empty()) append_kv(out, "error", p.error);
        if (p.doc && p.doc->reason) append_kv(out, "reason", *p.doc->reason);
        out += "}";
    }
    out += "],\"waiting\":[";
    first = true;
    for (const auto& w : view_.waiting()) {
        if (!first) out += ",";
        first = false;
        out += "{";
        append_kv(out, "member", w.member, true);
        append_kv(out, "version", w.version);
        append_kv(out, "reason", w.reason);
        out += "}";
    }
    out += "]}";
    return out;
}

} // namespace joingate::proxy
