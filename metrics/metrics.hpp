// The Prometheus registry and the blocks of instruments each component gets at
// construction (DESIGN §8). Hot paths hold references; nothing looks a name up per request.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace joingate::metrics {

enum class UpstreamError : std::uint8_t { resolve, connect, connect_timeout, tls, bad_response, closed, kCount };
const char* to_string(UpstreamError);

// Every timeout has a name, a default (config::Limits) and a counter when it fires.
enum class Timeout : std::uint8_t { handshake, header, idle, connect, upstream_header, kCount };
const char* to_string(Timeout);

// One block per listener (inbound, outbound, admin, route).
class ListenerMetrics {
public:
    ListenerMetrics(prometheus::Registry& r, std::string listener, struct Families& f);
    void count_request(int code);
    void upstream_error(UpstreamError e) { upstream_errors_[static_cast<int>(e)]->Increment(); }
    void timeout(Timeout t) { timeouts_[static_cast<int>(t)]->Increment(); }

    prometheus::Gauge& connections_active;
    prometheus::Counter& tls_handshake_errors;
    prometheus::Counter& tls_handshakes_full;    // joingate_tls_handshakes_total{resumed="false"}
    prometheus::Counter& tls_handshakes_resumed; // {resumed="true"}
    prometheus::Counter& connections_rejected;
    prometheus::Histogram& request_duration;

private:
    std::string listener_;
    prometheus::Family<prometheus::Counter>& requests_;
    std::array<prometheus::Counter*, 600> by_code_{};
    std::array<prometheus::Counter*, static_cast<int>(UpstreamError::kCount)> upstream_errors_{};
    std::array<prometheus::Counter*, static_cast<int>(Timeout::kCount)> timeouts_{};
};

struct Families {
    explicit Families(prometheus::Registry& r);
    prometheus::Family<prometheus::Gauge>& build_info;
    prometheus::Family<prometheus::Gauge>& member_info;
    prometheus::Family<prometheus::Gauge>& member_is_leader;
    prometheus::Family<prometheus::Gauge>& leader_info;
    prometheus::Family<prometheus::Gauge>& cluster_members;
    prometheus::Family<prometheus::Counter>& admission_decisions;
    prometheus::Family<prometheus::Counter>& join_retries;
    prometheus::Family<prometheus::Gauge>& join_waiting;
    prometheus::Family<prometheus::Gauge>& join_admitted;
    prometheus::Family<prometheus::Histogram>& join_wait_seconds;
    prometheus::Family<prometheus::Gauge>& overrides_active;
    prometheus::Family<prometheus::Counter>& requests;
    prometheus::Family<prometheus::Histogram>& request_duration;
    prometheus::Family<prometheus::Counter>& upstream_errors;
    prometheus::Family<prometheus::Counter>& tls_handshake_errors;
    prometheus::Family<prometheus::Counter>& tls_handshakes;
    prometheus::Family<prometheus::Gauge>& connections_active;
    prometheus::Family<prometheus::Counter>& connections_rejected;
    prometheus::Family<prometheus::Counter>& timeouts;
    prometheus::Family<prometheus::Counter>& config_reloads;
    prometheus::Family<prometheus::Gauge>& cert_expiry;
};

// Owns the registry; lives as long as the process.
class Metrics {
public:
    Metrics();
    std::string serialize() const; // Prometheus text format 0.0.4
    ListenerMetrics& listener(std::string_view name); // created once per name, stable address
    prometheus::Registry& registry() { return *registry_; }
    Families& families() { return *families_; }

    prometheus::Counter& reload_success;
    prometheus::Counter& reload_failure;
    prometheus::Gauge& cert_expiry;

private:
    std::shared_ptr<prometheus::Registry> registry_;
    std::unique_ptr<Families> families_;
    std::array<std::unique_ptr<ListenerMetrics>, 8> listeners_;
    std::array<std::string, 8> listener_names_;
    Metrics(std::shared_ptr<prometheus::Registry> r, std::unique_ptr<Families> f);
};

} // namespace joingate::metrics
