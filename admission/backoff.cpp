// Jittered exponential backoff, computed in double and clamped before converting back.
#include "admission/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

namespace joingate::admission {
namespace {
constexpr double min_delay_us = 1000.0;
}

UnitRandom seeded_random(std::uint64_t seed) {
    auto engine = std::make_shared<std::mt19937_64>(seed);
    return [engine]() {
        // 53 random bits -> [0, 1) exactly representable, never 1.0.
        return static_cast<double>((*engine)() >> 11) * 0x1.0p-53;
    };
}

Delay backoff_ceiling(const config::Retry& retry, std::uint32_t attempt) noexcept {
    double initial =
        std::max(0.0, std::chrono::duration<double, std::micro>(retry.initial).count());
    double max = std::max(0.0, std::chrono::duration<double, std::micro>(retry.max).count());
    double multiplier = std::isfinite(retry.multiplier) ? std::max(1.0, retry.multiplier) : 1.0;
    // pow may reach +inf for large attempts; min() then picks max.
    double d = std::min(max, initial * std::pow(multiplier, static_cast<double>(attempt)));
    if (!std::isfinite(d))
        d = max;
    return Delay(static_cast<Delay::rep>(d));
}

Delay backoff_delay(const config::Retry& retry, std::uint32_t attempt, double u) noexcept {
    double jitter = std::isfinite(retry.jitter) ? std::clamp(retry.jitter, 0.0, 1.0) : 0.0;
    if (!std::isfinite(u))
        u = 0.0;
    u = std::clamp(u, 0.0, 1.0);
    double ceiling = static_cast<double>(backoff_ceiling(retry, attempt).count());
    double d = ceiling * (1.0 - jitter * u);
    return Delay(static_cast<Delay::rep>(std::max(d, min_delay_us)));
}

} // namespace joingate::admission
