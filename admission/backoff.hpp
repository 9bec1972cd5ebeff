// Jittered exponential backoff for the follower's wait-and-retry (DESIGN §6):
// d = min(max, initial × multiplier^n) × U[1 − jitter, 1], so that pods restarted together
// do not retry in lockstep. Randomness is injected; nothing here reads a clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

#include "config/config.hpp"

namespace joingate::admission {

// Microseconds, not the config's milliseconds: jittered delays should not collide just
// because of rounding.
using Delay = std::chrono::microseconds;

// A uniform random number in [0, 1). Tests pass a seeded generator or a fixed script.
using UnitRandom = std::function<double()>;

// A UnitRandom over a seeded 64-bit Mersenne Twister; the proxy seeds it from
// std::random_device once, tests with a constant.
UnitRandom seeded_random(std::uint64_t seed);

// The un-jittered delay before retry number `attempt` (0-based): min(max, initial ×
// multiplier^attempt). Never negative, never overflows; a multiplier below 1 counts as 1.
Delay backoff_ceiling(const config::Retry& retry, std::uint32_t attempt) noexcept;

// backoff_ceiling scaled by 1 − jitter × u for u in [0, 1) (u is clamped), i.e. a
// uniform factor in (1 − jitter, 1]; at least 1 ms, so a retry loop can never spin.
Delay backoff_delay(const config::Retry& retry, std::uint32_t attempt, double u) noexcept;

// The same drawing u from `random`.
inline Delay backoff_delay(const config::Retry& retry, std::uint32_t attempt,
                           const UnitRandom& random) {
    return backoff_delay(retry, attempt, random());
}

} // namespace joingate::admission
