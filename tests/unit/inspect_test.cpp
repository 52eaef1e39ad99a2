// SPDX-License-Identifier: BSD-3-Clause
// Payload inspection: rule files and their errors, Hyperscan stream scanning across segments and
// its depth, scopes, pools that run dry, a reload's cut, and the TLS server name / HTTP Host.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "inspect/inspector.h"
#include "inspect/names.h"
#include "inspect/rules.h"

using namespace weir;
using namespace weir::inspect;
using nlohmann::json;

namespace {

std::shared_ptr<const Ruleset> compile(const char* text, uint32_t depth = 4096) {
    return Ruleset::compile(parse_rules(json::parse(text), "test.json"), depth, "test.json");
}

const uint8_t* b(const char* s) { return reinterpret_cast<const uint8_t*>(s); }
uint32_t n(const char* s) { return static_cast<uint32_t>(std::strlen(s)); }

struct Ended {
    flow::FlowRecord r{};
    flow::Findings f{};
    const flow::Findings* operator->() const { return &f; }
};
std::string app_of(const Ended& e) { return Registry::instance().app_name(e.f.app); }

struct Fixture {
    explicit Fixture(const char* rules, InspectConfig cfg = {}, uint32_t capacity = 64)
        : engine(compile(rules, cfg.depth), cfg.streams), insp(cfg, capacity) {
        insp.attach(&engine);
    }
    Ended end(uint32_t entry, uint16_t dport = 80, uint8_t proto = 6) {
        Ended e;
        e.r.tuple.dport = dport;
        e.r.tuple.proto = proto;
        insp.finish(entry, e.r, e.f);
        if (!e.r.inspected_flow()) e.f = flow::Findings{};
        return e;
    }
    Engine engine;
    Inspector insp;
};

const char* kRules = R"({"rules": [
  {"id": 10, "name": "http request", "pattern": "^(GET|POST|HEAD) [^ ]+ HTTP/1\\.[01]\r\n", "app": "HTTP"},
  {"id": 11, "name": "secret", "pattern": "EXPLOIT-STRING", "tag": "exploit"},
  {"id": 12, "name": "ssh", "pattern": "^SSH-[12]\\.", "app": "SSH", "proto": "tcp"},
  {"id": 13, "name": "admin only on 8080", "pattern": "admin", "tag": "admin", "ports": [8080],
   "direction": "to_server", "flags": ["caseless"]}
]})";

}  // namespace

TEST(Rules, ParseErrorsNameTheRuleAndField) {
    try {
        parse_rules(json::parse(R"({"rules": [{"id": 5, "pattern": "x", "tag": "t", "flags": ["nosuch"]},
                                               {"id": 5, "pattern": "y", "app": "A"},
                                               {"id": 6, "pattern": "z"},
                                               {"id": 7, "pattern": "q", "tag": "t", "proto": "icmp", "bogus": 1}]})"),
                    "r.json");
        FAIL() << "no error";
    } catch (const RuleError& e) {
        const std::string w = e.what();
        EXPECT_NE(w.find("r.json: rules[0] (id 5).flags: unknown flag \"nosuch\""), std::string::npos) << w;
        EXPECT_NE(w.find("rules[1] (id 5).id: used by another rule"), std::string::npos) << w;
        EXPECT_NE(w.find("rules[2] (id 6): does nothing"), std::string::npos) << w;
        EXPECT_NE(w.find("rules[3] (id 7).proto: expected"), std::string::npos) << w;
        EXPECT_NE(w.find("rules[3] (id 7).bogus: unknown key"), std::string::npos) << w;
    }
}

TEST(Rules, CompileErrorNamesRuleAndHyperscanReason) {
    try {
        compile(
            R"({"rules": [{"id": 1, "pattern": "ok", "tag": "a"}, {"id": 42, "name": "broken", "pattern": "a(b", "tag": "b"}]})");
        FAIL() << "no error";
    } catch (const RuleError& e) {
        const std::string w = e.what();
        EXPECT_NE(w.find("rule 42 (broken)"), std::string::npos) << w;
        EXPECT_NE(w.find("parenthes"), std::string::npos) << w;  // Hyperscan: "Missing close parenthesis ..."
    }
}

TEST(Rules, RegistryHandlesAreStableAcrossCompiles) {
    auto a = compile(kRules);
    auto b2 = compile(kRules);
    ASSERT_EQ(a->rules().size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(a->rules()[i].handle, b2->rules()[i].handle);
    EXPECT_EQ(Registry::instance().app_name(a->rules()[0].app), "HTTP");
    EXPECT_EQ(Registry::instance().rule_info(a->rules()[1].handle)->tag, "exploit");
    EXPECT_GT(a->stream_bytes(), 0u);
}

TEST(Inspector, PatternSplitAcrossSegmentsIsFound) {
    Fixture f(kRules);
    f.insp.start(3);
    EXPECT_EQ(f.insp.scan(3, 0, 6, 40000, 80, b("GET / HTTP/1.1\r\nX: EXPLO"), n("GET / HTTP/1.1\r\nX: EXPLO")),
              Inspector::Result::kMore);
    f.insp.scan(3, 0, 6, 40000, 80, b("IT-STRING\r\n"), n("IT-STRING\r\n"));
    const auto r = f.end(3);
    ASSERT_TRUE(r.r.inspected_flow());
    EXPECT_EQ(app_of(r), "HTTP");
    ASSERT_EQ(r->nrules, 1);
    EXPECT_EQ(Registry::instance().rule_info(r->rules[0])->id, 11u);
    EXPECT_EQ(f.engine.matches(1).get(), 1u);
    EXPECT_EQ(f.insp.stats().in_use.get(), 0u);
}

TEST(Inspector, NothingPastTheDepth) {
    InspectConfig cfg;
    cfg.depth = 32;
    Fixture f(kRules, cfg);
    f.insp.start(1);
    const std::string filler(30, 'x');
    f.insp.scan(1, 0, 6, 40000, 80, b(filler.c_str()), 30);
    // The pattern starts within the depth but ends after it: not found; nor anything later.
    f.insp.scan(1, 0, 6, 40000, 80, b("EXPLOIT-STRING"), 14);
    f.insp.scan(1, 0, 6, 40000, 80, b("EXPLOIT-STRING"), 14);
    const auto r = f.end(1);
    EXPECT_EQ(r->nrules, 0);
    EXPECT_EQ(f.insp.stats().bytes.get(), 32u);
}

TEST(Inspector, ScopeByPortDirectionAndProtocol) {
    Fixture f(kRules);
    f.insp.start(1);
    f.insp.scan(1, 0, 6, 40000, 8080, b("ADMIN"), 5);  // initiator to the server on 8080: tagged
    f.insp.start(2);
    f.insp.scan(2, 1, 6, 40000, 8080, b("admin"), 5);  // the server's bytes: not
    f.insp.start(4);
    f.insp.scan(4, 0, 6, 40000, 8081, b("admin"), 5);  // another port: not
    f.insp.start(6);
    f.insp.scan(6, 0, 6, 8080, 40000, b("admin"), 5);  // the port at the other end: tagged
    f.insp.start(5);
    f.insp.scan(5, 1, 17, 40000, 22, b("SSH-2.0-x"), 9);  // SSH rule is TCP only
    EXPECT_EQ(f.end(1, 8080)->nrules, 1);
    EXPECT_EQ(f.end(2, 8080)->nrules, 0);
    EXPECT_EQ(f.end(4, 8081)->nrules, 0);
    EXPECT_EQ(f.end(6, 40000)->nrules, 1);
    EXPECT_EQ(f.end(5, 22, 17)->app, 0);
}

TEST(Inspector, PoolRunsDryCountsAndMarksTheFlow) {
    InspectConfig cfg;
    cfg.streams = 2;
    Fixture f(kRules, cfg);
    for (uint32_t e = 0; e < 3; ++e) {
        f.insp.start(e);
        f.insp.scan(e, 0, 6, 40000, 22, b("SSH-2.0-OpenSSH"), 15);
    }
    EXPECT_EQ(f.insp.stats().skipped.get(), 1u);
    const auto r2 = f.end(2, 22);
    EXPECT_TRUE(r2.r.inspected_flow());
    EXPECT_EQ(r2->flags & flow::Findings::kInspectSkipped, flow::Findings::kInspectSkipped);
    EXPECT_EQ(app_of(f.end(0, 22)), "SSH");
    // A context came free: the next flow is inspected.
    f.insp.start(7);
    f.insp.scan(7, 0, 6, 40000, 22, b("SSH-1.99-x"), 10);
    EXPECT_EQ(app_of(f.end(7, 22)), "SSH");
}

TEST(Inspector, ReloadCutsFlowsBeingInspected) {
    Fixture f(kRules);
    f.insp.start(1);
    f.insp.scan(1, 0, 6, 40000, 80, b("EXPLOIT-"), 8);
    Engine other(compile(R"({"rules": [{"id": 1, "pattern": "STRING", "tag": "s"}]})"), 16);
    f.insp.attach(&other);
    EXPECT_EQ(f.insp.stats().cut.get(), 1u);
    EXPECT_NE(f.insp.scan(1, 0, 6, 40000, 80, b("STRING"), 6), Inspector::Result::kMore);
    const auto r = f.end(1);
    EXPECT_EQ(r->nrules, 0);
    EXPECT_TRUE(r->flags & flow::Findings::kInspectCut);
    // New flows use the new rules.
    f.insp.start(2);
    f.insp.scan(2, 0, 6, 40000, 80, b("xSTRINGx"), 8);
    EXPECT_EQ(f.end(2)->nrules, 1);
    f.insp.attach(nullptr);
}

TEST(Inspector, EndsAfterThePacketLimitAndFreesTheContext) {
    InspectConfig cfg;
    cfg.packets = 2;
    Fixture f(kRules, cfg);
    f.insp.start(1);
    EXPECT_EQ(f.insp.scan(1, 0, 6, 40000, 80, b("a"), 1), Inspector::Result::kMore);
    EXPECT_EQ(f.insp.scan(1, 0, 6, 40000, 80, b("b"), 1), Inspector::Result::kMore);
    EXPECT_EQ(f.insp.scan(1, 1, 6, 40000, 80, b("c"), 1), Inspector::Result::kMore);
    EXPECT_EQ(f.insp.scan(1, 1, 6, 40000, 80, b("d"), 1), Inspector::Result::kDoneEmpty);
    EXPECT_EQ(f.insp.stats().in_use.get(), 0u);
    EXPECT_FALSE(f.end(1).r.inspected_flow());
}

TEST(Names, TlsServerNameFromAClientHello) {
    // A ClientHello with a session id, two cipher suites, one compression method, and two
    // extensions: supported_groups, then server_name "example.org".
    std::vector<uint8_t> hs(2 + 32, 0xAB);  // client version, random
    hs[0] = hs[1] = 0x03;
    hs.push_back(4);
    for (int i = 0; i < 4; ++i) hs.push_back(0x11);
    hs.insert(hs.end(), {0x00, 0x04, 0x13, 0x01, 0x13, 0x02, 0x01, 0x00});
    const std::string host = "example.org";
    std::vector<uint8_t> ext = {0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17};
    const uint16_t list = static_cast<uint16_t>(3 + host.size());
    ext.insert(ext.end(),
               {0x00, 0x00, 0x00, static_cast<uint8_t>(list + 2), 0x00, static_cast<uint8_t>(list), 0x00, 0x00,
                static_cast<uint8_t>(host.size())});
    ext.insert(ext.end(), host.begin(), host.end());
    hs.push_back(static_cast<uint8_t>(ext.size() >> 8));
    hs.push_back(static_cast<uint8_t>(ext.size()));
    hs.insert(hs.end(), ext.begin(), ext.end());
    std::vector<uint8_t> rec = {0x16,
                                0x03,
                                0x01,
                                static_cast<uint8_t>((hs.size() + 4) >> 8),
                                static_cast<uint8_t>(hs.size() + 4),
                                0x01,
                                0x00,
                                static_cast<uint8_t>(hs.size() >> 8),
                                static_cast<uint8_t>(hs.size())};
    rec.insert(rec.end(), hs.begin(), hs.end());
    const FoundName f = find_name(rec.data(), rec.size());
    ASSERT_EQ(f.kind, NameKind::kTlsSni);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data), f.len), host);
    // Cut anywhere before the name's end: nothing, and nothing read past the cut.
    for (size_t cut = 0; cut + 1 < rec.size(); ++cut) {
        std::vector<uint8_t> part(rec.begin(), rec.begin() + static_cast<long>(cut));
        EXPECT_EQ(find_name(part.data(), part.size()).kind, NameKind::kNone) << cut;
    }
}

TEST(Names, HttpHostHeader) {
    const char* req = "GET /a HTTP/1.1\r\nUser-Agent: x\r\nhOsT:  www.example.com:8080 \r\nAccept: */*\r\n\r\n";
    FoundName f = find_name(b(req), n(req));
    ASSERT_EQ(f.kind, NameKind::kHttpHost);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data), f.len), "www.example.com:8080");
    const char* none = "GET / HTTP/1.0\r\n\r\nHost: late\r\n";
    EXPECT_EQ(find_name(b(none), n(none)).kind, NameKind::kNone);
    const char* resp = "HTTP/1.1 200 OK\r\nHost: x\r\n\r\n";
    EXPECT_EQ(find_name(b(resp), n(resp)).kind, NameKind::kNone);
    const char* cut = "GET / HTTP/1.1\r\nHost: exa";
    EXPECT_EQ(find_name(b(cut), n(cut)).kind, NameKind::kNone);
}

TEST(Inspector, KeepsTheClientsServerName) {
    Fixture f(kRules);
    f.insp.start(9);
    const char* req = "GET / HTTP/1.1\r\nHost: flows.example\r\n\r\n";
    f.insp.scan(9, 0, 6, 40000, 80, b(req), n(req));
    const auto r = f.end(9);
    EXPECT_EQ(r->name_kind, static_cast<uint8_t>(NameKind::kHttpHost));
    EXPECT_EQ(std::string(r->name, r->name_len), "flows.example");
    EXPECT_EQ(app_of(r), "HTTP");
}

TEST(Inspector, ActiveTimeoutCarriesTheFindingsToTheNextRecord) {
    Fixture f(kRules);
    f.insp.start(3);
    const char* req = "GET / HTTP/1.1\r\nHost: long.example\r\n\r\n";
    f.insp.scan(3, 0, 6, 40000, 80, b(req), n(req));
    // The active timeout ends the record; the conversation goes on in entry 9.
    Ended first;
    f.insp.finish(3, first.r, first.f, 0xABCDEF, 1000);
    EXPECT_EQ(app_of(first), "HTTP");
    EXPECT_FALSE(f.insp.restore(9, 0x123456, 2000, 15'000'000'000ull));  // another conversation
    ASSERT_TRUE(f.insp.restore(9, 0xABCDEF, 2000, 15'000'000'000ull));
    EXPECT_EQ(f.insp.stats().carried.get(), 1u);
    Ended second = f.end(9);
    EXPECT_EQ(app_of(second), "HTTP");
    EXPECT_EQ(std::string(second->name, second->name_len), "long.example");
    EXPECT_TRUE(second->flags & flow::Findings::kInspectCarried);
    EXPECT_EQ(second->inspected, 0u);
    // Kept too long (past the idle timeout): not restored, and its name slot comes back.
    f.insp.start(4);
    f.insp.scan(4, 0, 6, 40001, 80, b(req), n(req));
    Ended third;
    f.insp.finish(4, third.r, third.f, 0x777, 1000);
    EXPECT_FALSE(f.insp.restore(5, 0x777, 1000 + 16'000'000'000ull, 15'000'000'000ull));
    EXPECT_FALSE(f.insp.restore(5, 0x777, 1000, 15'000'000'000ull));  // gone
    // Kept at a clock ahead of the packet that continues the conversation: still its own.
    f.insp.start(6);
    f.insp.scan(6, 0, 6, 40002, 80, b(req), n(req));
    Ended fourth;
    f.insp.finish(6, fourth.r, fourth.f, 0x888, 5000);
    EXPECT_TRUE(f.insp.restore(7, 0x888, 4000, 15'000'000'000ull));
}
