// Version and protocol-range parsing (DESIGN §3): what operators may write in
// member.version / member.protocol and what peers may send in X-Joingate-Version.
#include "admission/version.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace joingate::admission {
// Readable gtest failure output.
void PrintTo(const Version& v, std::ostream* os) {
    *os << v.text();
}
} // namespace joingate::admission

using joingate::admission::parse_protocol_range;
using joingate::admission::parse_version;
using joingate::admission::Version;

namespace {

Version v(std::string_view s) {
    std::string err;
    auto r = parse_version(s, &err);
    EXPECT_TRUE(r.has_value()) << s << ": " << err;
    return r.value_or(Version{});
}

struct Valid {
    const char* text;
    std::uint64_t major, minor, patch;
    const char* prerelease;
    const char* build;
    const char* canonical;
};

TEST(Version, ParsesValidInputs) {
    const std::vector<Valid> cases = {
        {"3.4.23", 3, 4, 23, "", "", "3.4.23"},
        {"v3.4.23", 3, 4, 23, "", "", "3.4.23"},
        {"0.0.0", 0, 0, 0, "", "", "0.0.0"},
        {"v3.5.0-rc.1", 3, 5, 0, "rc.1", "", "3.5.0-rc.1"},
        {"1.0.0-alpha", 1, 0, 0, "alpha", "", "1.0.0-alpha"},
        {"1.0.0-alpha.beta.1", 1, 0, 0, "alpha.beta.1", "", "1.0.0-alpha.beta.1"},
        {"1.0.0-0.3.7", 1, 0, 0, "0.3.7", "", "1.0.0-0.3.7"},
        {"1.0.0-x.7.z.92", 1, 0, 0, "x.7.z.92", "", "1.0.0-x.7.z.92"},
        {"1.0.0-x-y-z.--", 1, 0, 0, "x-y-z.--", "", "1.0.0-x-y-z.--"},
        {"1.0.0-0A.is.legal", 1, 0, 0, "0A.is.legal", "", "1.0.0-0A.is.legal"},
        {"1.0.0+20130313144700", 1, 0, 0, "", "20130313144700", "1.0.0+20130313144700"},
        {"1.0.0-beta+exp.sha.5114f85", 1, 0, 0, "beta", "exp.sha.5114f85",
         "1.0.0-beta+exp.sha.5114f85"},
        {"1.0.0+21AF26D3----117B344092BD", 1, 0, 0, "", "21AF26D3----117B344092BD",
         "1.0.0+21AF26D3----117B344092BD"},
        {"1.0.0+001", 1, 0, 0, "", "001", "1.0.0+001"}, // build may have leading zeros
        {"2", 2, 0, 0, "", "", "2.0.0"},                // etcd 0.4 internal version
        {"v2", 2, 0, 0, "", "", "2.0.0"},
        {"0", 0, 0, 0, "", "", "0.0.0"},
        {"18446744073709551615.0.0", 18446744073709551615ULL, 0, 0, "", "",
         "18446744073709551615.0.0"},
        {"1.2.3-99999999999999999999999", 1, 2, 3, "99999999999999999999999", "",
         "1.2.3-99999999999999999999999"},
    };
    for (const auto& c : cases) {
        std::string err;
        auto r = parse_version(c.text, &err);
        ASSERT_TRUE(r.has_value()) << c.text << ": " << err;
        EXPECT_EQ(r->major, c.major) << c.text;
        EXPECT_EQ(r->minor, c.minor) << c.text;
        EXPECT_EQ(r->patch, c.patch) << c.text;
        EXPECT_EQ(r->prerelease, c.prerelease) << c.text;
        EXPECT_EQ(r->build, c.build) << c.text;
        EXPECT_EQ(r->text(), c.canonical) << c.text;
        // The canonical text parses back to the same version.
        auto again = parse_version(r->text());
        ASSERT_TRUE(again.has_value()) << c.canonical;
        EXPECT_EQ(*again, *r);
        EXPECT_EQ(again->build, r->build);
    }
}

struct Invalid {
    const char* text;
    const char* mentions; // a part of the error text that says what is wrong
};

TEST(Version, RejectsInvalidInputsNamingThem) {
    const std::vector<Invalid> cases = {
        {"", "empty"},
        {"v", "nothing after 'v'"},
        {"3.4", "missing patch"},
        {"3.4.x", "patch: not a number"},
        {"3.4.23.1", "more than three"},
        {"1.2.3.4-rc", "more than three"},
        {"01.2.3", "major: leading zero"},
        {"1.02.3", "minor: leading zero"},
        {"1.2.03", "patch: leading zero"},
        {"1..3", "minor: empty number"},
        {".1.2", "major: empty number"},
        {"1.2.", "patch: empty number"},
        {"1.2.3-", "empty prerelease"},
        {"1.2.3+", "empty build"},
        {"1.2.3-rc..1", "empty prerelease identifier"},
        {"1.2.3-rc.", "empty prerelease identifier"},
        {"1.2.3+a..b", "empty build identifier"},
        {"1.2.3-01", "leading zero in numeric prerelease"},
        {"1.2.3-rc.01", "leading zero in numeric prerelease"},
        {"1.2.3-r_c", "invalid character in prerelease"},
        {"1.2.3+b$", "invalid character in build"},
        {"1.2.3+b+c", "invalid character in build"},
        {"1.2.3-rc+b+c", "invalid character in build"},
        {" 3.4.23", "major: not a number"},
        {"3.4.23 ", "patch: not a number"},
        {"V3.4.23", "major: not a number"},
        {"vv3.4.23", "major: not a number"},
        {"-1.0.0", "major: empty number"},
        {"+1.0.0", "major: empty number"},
        {"18446744073709551616.0.0", "major: number too large"},
        {"99999999999999999999", "number too large"},
        {"auto", "major: not a number"},
        {"latest", "major: not a number"},
        {"3.x", "minor: not a number"},
        {"3.4.23\n", "\\x0a"},
        {"1.0.0-alpha\xff", "\\xff"},
        {"1.2.3-\"", "\\\""},
    };
    for (const auto& c : cases) {
        std::string err;
        auto r = parse_version(c.text, &err);
        EXPECT_FALSE(r.has_value()) << "accepted: " << c.text;
        EXPECT_NE(err.find("not a version: \""), std::string::npos) << err;
        EXPECT_NE(err.find(c.mentions), std::string::npos) << "input " << c.text << " -> " << err;
    }
}

TEST(Version, ErrorQuotesTheOffendingText) {
    std::string err;
    EXPECT_FALSE(parse_version("3.4.x", &err));
    EXPECT_EQ(err, "not a version: \"3.4.x\" (patch: not a number; expected "
                   "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] or an integer, e.g. 3.4.23)");
    // Works without an error sink.
    EXPECT_FALSE(parse_version("nope"));
}

TEST(Version, LongInputIsRejectedAndTruncatedInTheMessage) {
    std::string long_text = "1.2.3-" + std::string(1000, 'a');
    std::string err;
    EXPECT_FALSE(parse_version(long_text, &err));
    EXPECT_NE(err.find("too long"), std::string::npos);
    EXPECT_LT(err.size(), 300u);
    EXPECT_NE(err.find("...\""), std::string::npos);
}

TEST(Version, SemVerSpecPrecedenceChain) {
    // SemVer 2.0 §11 example, plus release ordering around it.
    const std::vector<const char*> chain = {
        "0.9.9",      "1.0.0-0",      "1.0.0-1",       "1.0.0-2",
        "1.0.0-10",   "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
        "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
        "1.0.0",      "1.0.1-rc.1",   "1.0.1",         "1.1.0",
        "2.0.0",      "2.1.0",        "2.1.1",         "10.0.0",
    };
    for (std::size_t i = 0; i < chain.size(); ++i) {
        for (std::size_t j = 0; j < chain.size(); ++j) {
            auto a = v(chain[i]), b = v(chain[j]);
            auto expected = i <=> j;
            EXPECT_EQ(a <=> b, expected) << chain[i] << " vs " << chain[j];
            EXPECT_EQ(a == b, i == j) << chain[i] << " vs " << chain[j];
        }
    }
}

TEST(Version, BuildMetadataAndPrefixIgnoredInComparison) {
    EXPECT_EQ(v("1.0.0+a"), v("1.0.0+b"));
    EXPECT_EQ(v("1.0.0+a"), v("1.0.0"));
    EXPECT_EQ(v("v1.0.0"), v("1.0.0"));
    EXPECT_EQ(v("1.0.0-rc.1+x"), v("1.0.0-rc.1"));
    EXPECT_LT(v("1.0.0-rc.1+zzz"), v("1.0.0+aaa"));
    EXPECT_EQ(v("3"), v("3.0.0"));
    EXPECT_LT(v("2"), v("2.0.1"));
    EXPECT_GT(v("3"), v("2.99.99"));
}

TEST(Version, PrereleaseIdentifierRules) {
    EXPECT_LT(v("1.0.0-9"), v("1.0.0-10"));    // numeric, not lexical
    EXPECT_LT(v("1.0.0-99"), v("1.0.0-a"));    // numeric < alphanumeric
    EXPECT_LT(v("1.0.0-A"), v("1.0.0-a"));     // ASCII order
    EXPECT_GT(v("1.0.0-a-b"), v("1.0.0-a.b")); // "a-b" vs "a": longer wins
    EXPECT_LT(v("1.0.0-a"), v("1.0.0-a.0"));   // more identifiers = higher
    EXPECT_LT(v("1.0.0-1a"), v("1.0.0-1b"));   // alphanumeric starting with digit
    EXPECT_GT(v("1.0.0-1a"), v("1.0.0-999"));  // "1a" is alphanumeric
    EXPECT_LT(v("1.0.0-18446744073709551616"), v("1.0.0-18446744073709551617"));
    EXPECT_LT(v("1.0.0-18446744073709551615"), v("1.0.0-100000000000000000000"));
}

TEST(Version, NumericCoreComparesNumerically) {
    EXPECT_LT(v("3.4.9"), v("3.4.10"));
    EXPECT_LT(v("3.9.0"), v("3.10.0"));
    EXPECT_LT(v("9.0.0"), v("10.0.0"));
    EXPECT_GT(v("3.5.0-rc.0"), v("3.4.99"));
}

TEST(ProtocolRange, ParsesValid) {
    struct C {
        const char* text;
        std::uint32_t min, max;
    };
    for (auto c : std::vector<C>{{"1..1", 1, 1},
                                 {"0..0", 0, 0},
                                 {"1..2", 1, 2},
                                 {"0..4294967295", 0, 4294967295u},
                                 {"007..9", 7, 9}}) {
        std::string err;
        auto r = parse_protocol_range(c.text, &err);
        ASSERT_TRUE(r.has_value()) << c.text << ": " << err;
        EXPECT_EQ(r->min, c.min);
        EXPECT_EQ(r->max, c.max);
    }
    EXPECT_EQ(joingate::admission::to_string(joingate::config::ProtocolRange{1, 3}), "1..3");
    EXPECT_EQ(joingate::admission::to_string(joingate::config::ProtocolRange{}), "1..1");
}

TEST(ProtocolRange, RejectsInvalidNamingThem) {
    struct C {
        const char* text;
        const char* mentions;
    };
    for (auto c : std::vector<C>{{"", "missing \"..\""},
                                 {"1", "missing \"..\""},
                                 {"1-2", "missing \"..\""},
                                 {"1.2", "missing \"..\""},
                                 {"..2", "min is not"},
                                 {"1..", "max is not"},
                                 {"-1..2", "min is not"},
                                 {"1..-2", "max is not"},
                                 {"1...2", "max is not"},
                                 {"1..2..3", "max is not"},
                                 {" 1..2", "min is not"},
                                 {"1..2 ", "max is not"},
                                 {"a..b", "min is not"},
                                 {"0..4294967296", "max is not"},
                                 {"3..1", "min is greater than max"}}) {
        std::string err;
        auto r = parse_protocol_range(c.text, &err);
        EXPECT_FALSE(r.has_value()) << "accepted: " << c.text;
        EXPECT_NE(err.find("not a protocol range: \""), std::string::npos) << err;
        EXPECT_NE(err.find(c.mentions), std::string::npos) << c.text << " -> " << err;
    }
    std::string err;
    parse_protocol_range("3..1", &err);
    EXPECT_NE(err.find("\"3..1\""), std::string::npos) << err;
}

} // namespace
