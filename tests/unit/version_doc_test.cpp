// The /joingate/v1/version document (DESIGN §4): the exact v1 field names, round trips,
// and compatibility with newer and older sidecars (unknown fields, missing fields).
#include "admission/version_doc.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace joingate::admission;

namespace {

VersionDoc sample() {
    VersionDoc d;
    d.member = "etcd-0";
    d.version = "3.4.23";
    d.protocol = {1, 1};
    d.role = Role::leader;
    d.leader = MemberVersion{"etcd-0", "3.4.23"};
    d.admitted = true;
    d.mode = "both";
    d.policy = "not-older-than-leader";
    d.profile = "etcd3";
    d.admitted_members = {{"etcd-1", "3.4.23"}};
    return d;
}

TEST(VersionDoc, SerializesExactlyTheDesignExample) {
    EXPECT_EQ(to_json(sample()),
              R"({"api":1,"member":"etcd-0","version":"3.4.23","protocol":{"min":1,"max":1},)"
              R"("role":"leader","leader":{"member":"etcd-0","version":"3.4.23"},)"
              R"("admitted":true,"mode":"both","policy":"not-older-than-leader","profile":"etcd3",)"
              R"("admitted_members":[{"member":"etcd-1","version":"3.4.23"}]})");
}

TEST(VersionDoc, ParsesTheDesignExample) {
    const char* text =
        R"({"api":1,"member":"etcd-0","version":"3.4.23","protocol":{"min":1,"max":1},
 "role":"leader","leader":{"member":"etcd-0","version":"3.4.23"},
 "admitted":true,"mode":"both","policy":"not-older-than-leader","profile":"etcd3",
 "admitted_members":[{"member":"etcd-1","version":"3.4.23"}]})";
    std::string err;
    auto d = parse_version_doc(text, &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(*d, sample());
}

TEST(VersionDoc, OptionalAdditionsAndUnknownLeaderRoundTrip) {
    auto d = sample();
    d.role = Role::follower;
    d.leader.reset();
    d.admitted = false;
    d.reason = "older_than_leader";
    d.joingate = "0.1.0";
    d.protocol = {2, 5};
    d.admitted_members.clear();
    auto text = to_json(d);
    EXPECT_NE(text.find(R"("leader":null)"), std::string::npos) << text;
    EXPECT_NE(text.find(R"("reason":"older_than_leader")"), std::string::npos) << text;
    EXPECT_NE(text.find(R"("admitted_members":[])"), std::string::npos) << text;
    std::string err;
    auto back = parse_version_doc(text, &err);
    ASSERT_TRUE(back) << err;
    EXPECT_EQ(*back, d);
    // Unset additions are not written at all.
    auto plain = to_json(sample());
    EXPECT_EQ(plain.find("reason"), std::string::npos);
    EXPECT_EQ(plain.find("joingate"), std::string::npos);
}

TEST(VersionDoc, EscapesStrings) {
    auto d = sample();
    d.member = "we\"ird\\name\n\x01";
    d.version = "3.4.23+\xc3\xa9";
    auto text = to_json(d);
    std::string err;
    auto back = parse_version_doc(text, &err);
    ASSERT_TRUE(back) << err << " in " << text;
    EXPECT_EQ(back->member, d.member);
    EXPECT_EQ(back->version, d.version);
}

TEST(VersionDoc, IgnoresUnknownFieldsFromNewerSidecars) {
    const char* text =
        R"({"api":1,"member":"etcd-2","version":"3.6.0","future":{"x":[1,2,{"y":null}]},
        "protocol":{"min":1,"max":2,"preferred":2},"role":"leader","leader":{"member":"etcd-2",
        "version":"3.6.0","term":42},"admitted":true,"mode":"both","policy":"skew",
        "profile":"etcd3","admitted_members":[{"member":"etcd-1","version":"3.5.0","since":"x"}],
        "newfield":12.5})";
    std::string err;
    auto d = parse_version_doc(text, &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->member, "etcd-2");
    EXPECT_EQ(d->protocol, (joingate::config::ProtocolRange{1, 2}));
    ASSERT_TRUE(d->leader);
    EXPECT_EQ(d->leader->version, "3.6.0");
    ASSERT_EQ(d->admitted_members.size(), 1u);
    EXPECT_EQ(d->admitted_members[0], (MemberVersion{"etcd-1", "3.5.0"}));
}

TEST(VersionDoc, UnknownEnumValuesDoNotBreakTheDocument) {
    auto d = parse_version_doc(
        R"({"api":1,"member":"m","role":"candidate","mode":"future-mode","policy":"semver-range"})");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->role, Role::unknown);
    EXPECT_EQ(d->mode, "future-mode");
    EXPECT_EQ(d->policy, "semver-range");
}

TEST(VersionDoc, MissingOptionalFieldsTakeDefaults) {
    std::string err;
    auto d = parse_version_doc(R"({"api":1,"member":"etcd-1"})", &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->api, 1);
    EXPECT_EQ(d->member, "etcd-1");
    EXPECT_EQ(d->version, "");
    EXPECT_EQ(d->protocol, (joingate::config::ProtocolRange{1, 1}));
    EXPECT_EQ(d->role, Role::unknown);
    EXPECT_FALSE(d->leader);
    EXPECT_FALSE(d->admitted);
    EXPECT_TRUE(d->admitted_members.empty());
    EXPECT_FALSE(d->reason);
    // null is the same as missing for every optional field.
    d = parse_version_doc(
        R"({"api":1,"member":"etcd-1","version":null,"protocol":null,"role":null,"leader":null,
            "admitted":null,"admitted_members":null,"reason":null})",
        &err);
    ASSERT_TRUE(d) << err;
    EXPECT_FALSE(d->leader);
    // Partial protocol keeps the default for the missing bound.
    d = parse_version_doc(R"({"api":1,"member":"m","protocol":{"max":3}})", &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->protocol, (joingate::config::ProtocolRange{1, 3}));
    // Later API numbers on the v1 endpoint are accepted (additive changes only).
    d = parse_version_doc(R"({"api":2,"member":"m"})", &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->api, 2);
}

TEST(VersionDoc, RejectsWrongTypesAndNonObjects) {
    struct C {
        const char* text;
        const char* mentions;
    };
    const std::vector<C> cases = {
        {"", "malformed JSON"},
        {"{", "malformed JSON"},
        {R"({"api":1,"member":"m"} trailing)", "malformed JSON"},
        {"[]", "expected a JSON object"},
        {R"([{"api":1,"member":"m"}])", "expected a JSON object"},
        {"\"text\"", "expected a JSON object"},
        {"null", "expected a JSON object"},
        {"42", "expected a JSON object"},
        {"{}", "\"api\""},
        {R"({"member":"m"})", "\"api\""},
        {R"({"api":1})", "\"member\""},
        {R"({"api":"1","member":"m"})", "\"api\""},
        {R"({"api":1.0,"member":"m"})", "\"api\""},
        {R"({"api":0,"member":"m"})", "\"api\""},
        {R"({"api":-1,"member":"m"})", "\"api\""},
        {R"({"api":99999999999,"member":"m"})", "\"api\""},
        {R"({"api":1,"member":null})", "\"member\""},
        {R"({"api":1,"member":7})", "\"member\""},
        {R"({"api":1,"member":"m","version":3.4})", "\"version\""},
        {R"({"api":1,"member":"m","protocol":"1..1"})", "\"protocol\""},
        {R"({"api":1,"member":"m","protocol":{"min":-1,"max":1}})", "\"protocol.min\""},
        {R"({"api":1,"member":"m","protocol":{"min":1,"max":"2"}})", "\"protocol.max\""},
        {R"({"api":1,"member":"m","protocol":{"min":1,"max":4294967296}})", "\"protocol.max\""},
        {R"({"api":1,"member":"m","protocol":{"min":3,"max":2}})", "min <= max"},
        {R"({"api":1,"member":"m","role":1})", "\"role\""},
        {R"({"api":1,"member":"m","leader":"etcd-0"})", "\"leader\""},
        {R"({"api":1,"member":"m","leader":{"member":1}})", "\"leader.member\""},
        {R"({"api":1,"member":"m","leader":{"version":[]}})", "\"leader.version\""},
        {R"({"api":1,"member":"m","admitted":"true"})", "\"admitted\""},
        {R"({"api":1,"member":"m","admitted":1})", "\"admitted\""},
        {R"({"api":1,"member":"m","mode":false})", "\"mode\""},
        {R"({"api":1,"member":"m","policy":{}})", "\"policy\""},
        {R"({"api":1,"member":"m","profile":[]})", "\"profile\""},
        {R"({"api":1,"member":"m","admitted_members":{}})", "\"admitted_members\""},
        {R"({"api":1,"member":"m","admitted_members":[{"member":"a","version":"1"},"b"]})",
         "\"admitted_members[1]\""},
        {R"({"api":1,"member":"m","admitted_members":[{"member":"a","version":1}]})",
         "\"admitted_members[0].version\""},
        {R"({"api":1,"member":"m","reason":5})", "\"reason\""},
        {"{\"api\":1,\"member\":\"\xff\"}", "malformed JSON"},
    };
    for (const auto& c : cases) {
        std::string err;
        auto d = parse_version_doc(c.text, &err);
        EXPECT_FALSE(d) << "accepted: " << c.text;
        EXPECT_NE(err.find(c.mentions), std::string::npos) << c.text << " -> " << err;
    }
    // Works without an error sink.
    EXPECT_FALSE(parse_version_doc("[]"));
}

TEST(VersionDoc, BoundedInput) {
    // Over 1 MiB is refused even when well-formed.
    std::string big =
        R"({"api":1,"member":"m","pad":")" + std::string(max_version_doc_bytes, 'x') + "\"}";
    std::string err;
    EXPECT_FALSE(parse_version_doc(big, &err));
    EXPECT_NE(err.find("limit"), std::string::npos) << err.substr(0, 200);
    // Just under the limit is fine.
    std::string fits = R"({"api":1,"member":"m","pad":")";
    fits += std::string(max_version_doc_bytes - fits.size() - 2, 'x') + "\"}";
    ASSERT_EQ(fits.size(), max_version_doc_bytes);
    EXPECT_TRUE(parse_version_doc(fits, &err)) << err;
    // Deep nesting is refused without recursion trouble.
    std::string deep =
        R"({"api":1,"member":"m","x":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
    EXPECT_FALSE(parse_version_doc(deep, &err));
}

TEST(VersionDoc, RoleNames) {
    EXPECT_STREQ(to_string(Role::leader), "leader");
    EXPECT_STREQ(to_string(Role::follower), "follower");
    EXPECT_STREQ(to_string(Role::unknown), "unknown");
    EXPECT_EQ(parse_role("leader"), Role::leader);
    EXPECT_EQ(parse_role("follower"), Role::follower);
    EXPECT_EQ(parse_role("Leader"), Role::unknown);
}

} // namespace
