// Jittered exponential backoff (DESIGN §6): bounds, growth, the cap, and the jitter
// distribution with a seeded generator, so restarted pods spread their retries.
#include "admission/backoff.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <vector>

using namespace joingate::admission;
using namespace std::chrono_literals;
using joingate::config::Retry;

namespace {

Retry defaults() {
    return Retry{};
} // 1s, 30s, 2.0, 0.5

TEST(Backoff, CeilingGrowsThenCaps) {
    auto r = defaults();
    const std::vector<Delay> expected = {1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s};
    for (std::uint32_t n = 0; n < expected.size(); ++n) {
        EXPECT_EQ(backoff_ceiling(r, n), expected[n]) << n;
    }
    EXPECT_EQ(backoff_ceiling(r, 1000), 30s); // pow overflows to inf: still the cap
    EXPECT_EQ(backoff_ceiling(r, UINT32_MAX), 30s);
    r.multiplier = 0.5; // below 1 counts as 1
    EXPECT_EQ(backoff_ceiling(r, 5), 1s);
    r.multiplier = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(backoff_ceiling(r, 5), 1s);
    r.multiplier = 1.5;
    r.initial = 200ms;
    EXPECT_EQ(backoff_ceiling(r, 2), 450ms);
}

TEST(Backoff, JitterScalesIntoTheDocumentedInterval) {
    auto r = defaults();
    EXPECT_EQ(backoff_delay(r, 0, 0.0), 1s);    // factor 1
    EXPECT_EQ(backoff_delay(r, 0, 0.5), 750ms); // factor 0.75
    EXPECT_EQ(backoff_delay(r, 3, 0.75), 5s);   // 8s × 0.625
    EXPECT_EQ(backoff_delay(r, 0, 7.0), 500ms); // u clamped to 1
    EXPECT_EQ(backoff_delay(r, 0, -1.0), 1s);   // u clamped to 0
    EXPECT_EQ(backoff_delay(r, 0, std::nan("")), 1s);
    r.jitter = 0;
    EXPECT_EQ(backoff_delay(r, 2, 0.9), 4s);
    r.jitter = 1;
    EXPECT_EQ(backoff_delay(r, 2, 0.9999999), 1ms); // never below 1 ms: no spinning
    r.initial = 0ms;
    EXPECT_EQ(backoff_delay(r, 0, 0.0), 1ms);
}

TEST(Backoff, SeededJitterIsUniformOverTheInterval) {
    auto r = defaults();
    auto random = seeded_random(42);
    constexpr int n = 10'000;
    for (std::uint32_t attempt : {0u, 3u, 10u}) {
        double ceiling = static_cast<double>(backoff_ceiling(r, attempt).count());
        double lo = ceiling * (1 - r.jitter);
        double sum = 0, sum_sq = 0;
        int below_mid = 0, identical_neighbours = 0;
        std::vector<int> buckets(10, 0);
        Delay previous{-1};
        for (int i = 0; i < n; ++i) {
            auto d = backoff_delay(r, attempt, random);
            double x = static_cast<double>(d.count());
            ASSERT_GT(x, lo) << "attempt " << attempt;
            ASSERT_LE(x, ceiling) << "attempt " << attempt;
            sum += x;
            sum_sq += x * x;
            below_mid += x < (lo + ceiling) / 2;
            buckets[std::min(9, static_cast<int>((x - lo) / (ceiling - lo) * 10))]++;
            identical_neighbours += d == previous;
            previous = d;
        }
        double mean = sum / n;
        double expected_mean = (lo + ceiling) / 2;
        double width = ceiling - lo;
        // Uniform: sd of the mean = width / sqrt(12 n) ≈ 0.0029 width; allow 5 sd.
        EXPECT_NEAR(mean, expected_mean, 5 * width / std::sqrt(12.0 * n)) << attempt;
        double var = sum_sq / n - mean * mean;
        EXPECT_NEAR(var, width * width / 12, width * width / 12 * 0.1) << attempt;
        EXPECT_NEAR(below_mid, n / 2, 250) << attempt;
        for (int b : buckets)
            EXPECT_NEAR(b, n / 10, 150) << attempt; // ≈ 5 sd
        EXPECT_EQ(identical_neighbours, 0) << attempt;
    }
}

TEST(Backoff, SeedsAreIndependentAndReproducible) {
    auto a = seeded_random(1), b = seeded_random(1), c = seeded_random(2);
    int same_ac = 0;
    for (int i = 0; i < 1000; ++i) {
        double x = a(), y = b(), z = c();
        EXPECT_EQ(x, y);
        EXPECT_GE(x, 0.0);
        EXPECT_LT(x, 1.0);
        same_ac += x == z;
    }
    EXPECT_EQ(same_ac, 0);
}

TEST(Backoff, LockstepPodsSpreadOut) {
    // Ten pods restarted together, each with its own seed: their first retries differ.
    auto r = defaults();
    std::set<Delay::rep> first;
    for (std::uint64_t pod = 0; pod < 10; ++pod) {
        first.insert(backoff_delay(r, 0, seeded_random(1000 + pod)).count());
    }
    EXPECT_EQ(first.size(), 10u);
}

} // namespace
