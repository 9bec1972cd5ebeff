// Metric families declared once; per-listener blocks resolve their children up front.
#include "metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <stdexcept>

namespace joingate::metrics {

const char* to_string(UpstreamError e) {
    switch (e) {
    case UpstreamError::resolve: return "resolve";
    case UpstreamError::connect: return "connect";
    case UpstreamError::connect_timeout: return "connect_timeout";
    case UpstreamError::tls: return "tls";
    case UpstreamError::bad_response: return "bad_response";
    case UpstreamError::closed: return "closed";
    case UpstreamError::kCount: break;
    }
    return "unknown";
}

const char* to_string(Timeout t) {
    switch (t) {
    case Timeout::handshake: return "handshake";
    case Timeout::header: return "header";
    case Timeout::idle: return "idle";
    case Timeout::connect: return "connect";
    case Timeout::upstream_header: return "upstream_header";
    case Timeout::kCount: break;
    }
    return "unknown";
}

namespace {
prometheus::Histogram::BucketBoundaries latency_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}
} // namespace

Families::Families(prometheus::Registry& r)
    : build_info(prometheus::BuildGauge().Name("joingate_build_info").Help("joingate build, value 1").Register(r)),
      member_info(prometheus::BuildGauge().Name("joingate_member_info").Help("The local member, value 1").Register(r)),
      member_is_leader(prometheus::BuildGauge().Name("joingate_member_is_leader").Help("1 when the local peer is the raft leader").Register(r)),
      leader_info(prometheus::BuildGauge().Name("joingate_leader_info").Help("The leader as seen by this sidecar, value 1").Register(r)),
      cluster_members(prometheus::BuildGauge().Name("joingate_cluster_members").Help("Members in the cluster view by version").Register(r)),
      admission_decisions(prometheus::BuildCounter().Name("joingate_admission_decisions_total").Help("Admission decisions").Register(r)),
      join_retries(prometheus::BuildCounter().Name("joingate_join_retries_total").Help("Follower-side join tries").Register(r)),
      join_waiting(prometheus::BuildGauge().Name("joingate_join_waiting").Help("1 while the local member waits to be admitted").Register(r)),
      join_admitted(prometheus::BuildGauge().Name("joingate_join_admitted").Help("1 once the local member is admitted").Register(r)),
      join_wait_seconds(prometheus::BuildHistogram().Name("joingate_join_wait_seconds").Help("Time from start to admission").Register(r)),
      overrides_active(prometheus::BuildGauge().Name("joingate_overrides_active").Help("Active admission overrides").Register(r)),
      requests(prometheus::BuildCounter().Name("joingate_requests_total").Help("Requests answered, by listener and status code").Register(r)),
      request_duration(prometheus::BuildHistogram().Name("joingate_request_duration_seconds").Help("Time from request head to response head").Register(r)),
      upstream_errors(prometheus::BuildCounter().Name("joingate_upstream_errors_total").Help("Upstream failures by kind").Register(r)),
      tls_handshake_errors(prometheus::BuildCounter().Name("joingate_tls_handshake_errors_total").Help("Failed TLS handshakes").Register(r)),
      tls_handshakes(prometheus::BuildCounter().Name("joingate_tls_handshakes_total").Help("Completed TLS handshakes, full or resumed from a session ticket").Register(r)),
      connections_active(prometheus::BuildGauge().Name("joingate_connections_active").Help("Open client connections").Register(r)),
      connections_rejected(prometheus::BuildCounter().Name("joingate_connections_rejected_total").Help("Connections refused at the per-listener limit").Register(r)),
      timeouts(prometheus::BuildCounter().Name("joingate_timeouts_total").Help("Timeouts fired, by listener and timeout name").Register(r)),
      config_reloads(prometheus::BuildCounter().Name("joingate_config_reloads_total").Help("Config reloads by result").Register(r)),
      cert_expiry(prometheus::BuildGauge().Name("joingate_cert_expiry_timestamp_seconds").Help("notAfter of the local certificate, Unix seconds").Register(r)) {}

ListenerMetrics::ListenerMetrics(prometheus::Registry&, std::string listener, Families& f)
    : connections_active(f.connections_active.Add({{"listener", listener}})),
      tls_handshake_errors(f.tls_handshake_errors.Add({{"listener", listener}})),
      tls_handshakes_full(f.tls_handshakes.Add({{"listener", listener}, {"resumed", "false"}})),
      tls_handshakes_resumed(f.tls_handshakes.Add({{"listener", listener}, {"resumed", "true"}})),
      connections_rejected(f.connections_rejected.Add({{"listener", listener}})),
      request_duration(f.request_duration.Add({{"listener", listener}}, latency_buckets())),
      listener_(std::move(listener)), requests_(f.requests) {
    for (int i = 0; i < static_cast<int>(UpstreamError::kCount); ++i)
        upstream_errors_[i] = &f.upstream_errors.Add(
            {{"listener", listener_}, {"kind", to_string(static_cast<UpstreamError>(i))}});
    for (int i = 0; i < static_cast<int>(Timeout::kCount); ++i)
        timeouts_[i] = &f.timeouts.Add(
            {{"listener", listener_}, {"timeout", to_string(static_cast<Timeout>(i))}});
}

void ListenerMetrics::count_request(int code) {
    if (code < 100 || code >= 600) code = 599;
    auto*& c = by_code_[code];
    if (!c) c = &requests_.Add({{"listener", listener_}, {"code", std::to_string(code)}});
    c->Increment();
}

Metrics::Metrics() : Metrics(std::make_shared<prometheus::Registry>(), nullptr) {}

Metrics::Metrics(std::shared_ptr<prometheus::Registry> r, std::unique_ptr<Families> f)
    : reload_success((f ? f : (f = std::make_unique<Families>(*r)))->config_reloads.Add({{"result", "success"}})),
      reload_failure(f->config_reloads.Add({{"result", "failure"}})),
      cert_expiry(f->cert_expiry.Add({})),
      registry_(std::move(r)), families_(std::move(f)) {
    families_->build_info.Add({{"version", JOINGATE_METRICS_VERSION}}).Set(1);
}

ListenerMetrics& Metrics::listener(std::string_view name) {
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
        if (listeners_[i] && listener_names_[i] == name) return *listeners_[i];
        if (!listeners_[i]) {
            listener_names_[i] = std::string(name);
            listeners_[i] = std::make_unique<ListenerMetrics>(*registry_, std::string(name), *families_);
            return *listeners_[i];
        }
    }
    throw std::runtime_error("too many listener kinds");
}

std::string Metrics::serialize() const {
    prometheus::TextSerializer s;
    return s.Serialize(registry_->Collect());
}

} // namespace joingate::metrics
