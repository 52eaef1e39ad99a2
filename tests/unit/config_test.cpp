// SPDX-License-Identifier: BSD-3-Clause
// Configuration: defaults, and one message per problem naming the JSON path.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"

using nlohmann::json;
using weir::config::ConfigError;
using weir::config::from_json;

namespace {
std::vector<std::string> problems_of(const json& j) {
    try {
        from_json(j);
    } catch (const ConfigError& e) {
        return e.problems();
    }
    return {};
}
}  // namespace

TEST(Config, MinimalReplayConfig) {
    const auto c = from_json(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}],
        "exporters":[{"url":"udp://127.0.0.1:4739"}]})"));
    EXPECT_TRUE(c.replay);
    EXPECT_EQ(c.workers, 1u);
    EXPECT_EQ(c.exporters.at(0).host, "127.0.0.1");
    EXPECT_EQ(c.exporters.at(0).port, 4739);
    EXPECT_EQ(c.idle_timeout_s, 15);
}

TEST(Config, EveryProblemNamesItsField) {
    const auto p = problems_of(json::parse(R"({
        "ports":[{"device":"0000:3b:00.0","rx_descriptors":"many"}, {"devise":"x"}],
        "workers": 0,
        "timeouts": {"idle_s": -1},
        "exporters":[{"url":"udp://127.0.0.1:70000"}, {"format":"sflow","url":"udp://[::1]:2055"}],
        "ipfix": {"mtu": 100},
        "colour": "blue"})"));
    const std::vector<std::string> want = {
        "ports[0].rx_descriptors: expected an integer, got a string \"many\"",
        "ports[1].device: required",
        "ports[1].devise: unknown key",
        "workers: expected 1..128, got 0",
        "timeouts.idle_s: expected 0.001..86400, got -1",
        "ipfix.mtu: expected 576..65535, got 100",
        "exporters[0].url: port must be 1..65535, got \"70000\"",
        "exporters[1].format: expected \"ipfix\", \"netflow9\", \"netflow5\", \"jsonl\" or \"clickhouse\", got "
        "\"sflow\"",
        "colour: unknown key",
    };
    for (const auto& w : want) EXPECT_NE(std::find(p.begin(), p.end(), w), p.end()) << "missing: " << w;
    EXPECT_EQ(p.size(), want.size());
}

TEST(Config, NoPortsIsAnError) {
    const auto p = problems_of(json::object());
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0], "ports: at least one port is required");
}

TEST(Config, WrongTopLevelType) {
    const auto p = problems_of(json::array());
    ASSERT_FALSE(p.empty());
    EXPECT_EQ(p[0], "(top level): expected an object, got an array");
}

TEST(Config, UrlForms) {
    weir::config::Exporter e;
    weir::config::parse_url("udp://[::1]:9995", e);
    EXPECT_EQ(e.host, "::1");
    EXPECT_EQ(e.port, 9995);
    weir::config::parse_url("udp://collector.example", e);
    EXPECT_EQ(e.port, 4739);
    weir::config::parse_url("tcp://collector:4739", e);
    EXPECT_EQ(e.scheme, weir::config::Scheme::kTcp);
    weir::config::parse_url("file:///var/lib/weir/flows.ipfix", e);
    EXPECT_EQ(e.path, "/var/lib/weir/flows.ipfix");
    EXPECT_THROW(weir::config::parse_url("sctp://a:1", e), std::invalid_argument);
    EXPECT_THROW(weir::config::parse_url("file://relative/path", e), std::invalid_argument);
    EXPECT_THROW(weir::config::parse_url("127.0.0.1:4739", e), std::invalid_argument);
}

TEST(Config, ZonesAndPolicy) {
    const auto c = from_json(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}],
        "zones": {"users": ["10.1.0.0/16", "2001:db8:1::/48"], "mgmt": ["10.2.0.250"]},
        "matrix": {"max_cells": 1024},
        "policy": {"allow": [{"from": "users", "to": "any", "proto": "tcp", "ports": [443, "8000-8080"]},
                             {"to": "mgmt", "proto": 17}]}})"));
    ASSERT_EQ(c.zones.size(), 2u);
    EXPECT_EQ(c.zones[1].name, "users");  // JSON objects are read in name order
    EXPECT_EQ(c.zones[0].prefixes.at(0).len, 32);
    EXPECT_EQ(c.matrix_cells, 1024u);
    ASSERT_TRUE(c.policy.on);
    ASSERT_EQ(c.policy.allow.size(), 2u);
    EXPECT_EQ(c.policy.allow[0].proto, 6);
    ASSERT_EQ(c.policy.allow[0].ports.size(), 2u);
    EXPECT_EQ(c.policy.allow[0].ports[1].lo, 8000);
    EXPECT_EQ(c.policy.allow[0].ports[1].hi, 8080);
    EXPECT_EQ(c.policy.allow[1].from, "any");
    EXPECT_EQ(c.policy.allow[1].proto, 17);

    const auto p = problems_of(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}],
        "zones": {"users": ["10.1.0.1/16", "bogus"], "empty": [], "dup": ["10.9.0.0/16"], "dup2": ["10.9.0.0/16"]},
        "detect": {"enabled": false},
        "policy": {"allow": [{"from": "nobody", "proto": "tcpp", "ports": [70000, "9-1"], "port": 1}]}})"));
    auto has = [&](const std::string& s) {
        return std::any_of(p.begin(), p.end(), [&](const std::string& x) { return x.find(s) != std::string::npos; });
    };
    EXPECT_TRUE(has("zones.users[0]: \"10.1.0.1/16\" has bits set past its length (did you mean 10.1.0.0/16?)"));
    EXPECT_TRUE(has("zones.users[1]: expected an IPv4 or IPv6 prefix"));
    EXPECT_TRUE(has("zones.empty: expected a non-empty array"));
    EXPECT_TRUE(has("zones: 10.9.0.0/16 is in zone \"dup\" and in \"dup2\""));
    EXPECT_TRUE(has("policy.allow[0].from: no zone named \"nobody\""));
    EXPECT_TRUE(has("policy.allow[0].proto: expected tcp, udp"));
    EXPECT_TRUE(has("policy.allow[0].ports[0]: expected a port 0..65535"));
    EXPECT_TRUE(has("policy.allow[0].ports[1]: expected a port 0..65535"));
    EXPECT_TRUE(has("policy.allow[0].port: unknown key"));
    EXPECT_TRUE(has("policy: out_of_policy events are detection events"));
}

TEST(Config, KafkaExporters) {
    weir::config::Exporter e;
    weir::config::parse_url("kafka://k1:9093,k2,[::1]:9094/flows.v1", e);
    EXPECT_EQ(e.scheme, weir::config::Scheme::kKafka);
    EXPECT_EQ(e.host, "k1:9093,k2:9092,[::1]:9094");
    EXPECT_EQ(e.path, "flows.v1");
    EXPECT_THROW(weir::config::parse_url("kafka://k1:9092", e), std::invalid_argument);       // no topic
    EXPECT_THROW(weir::config::parse_url("kafka://k1/bad topic", e), std::invalid_argument);  // not a topic name
    EXPECT_THROW(weir::config::parse_url("kafka://k1:0/t", e), std::invalid_argument);

    const auto c = from_json(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}],
        "exporters":[{"format":"jsonl","url":"kafka://127.0.0.1:9092/flows","keys":8,
                      "kafka":{"compression.codec":"lz4","message.timeout.ms":5000,"enable.idempotence":true}}]})"));
    const auto& k = c.exporters.at(0);
    EXPECT_EQ(k.keys, 8u);
    ASSERT_EQ(k.kafka.size(), 3u);
    EXPECT_EQ(k.kafka[0], (std::pair<std::string, std::string>{"compression.codec", "lz4"}));
    EXPECT_EQ(k.kafka[1].second, "true");  // nlohmann orders the keys
    EXPECT_EQ(k.kafka[2].second, "5000");

    const auto p = problems_of(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}],
        "exporters":[{"format":"netflow9","url":"kafka://h/t"}, {"format":"clickhouse","url":"kafka://h/t"},
                     {"url":"udp://127.0.0.1:4739","keys":4}, {"format":"jsonl","url":"kafka://h/t","kafka":{"x":[1]}},
                     {"format":"jsonl","url":"kafka://h/t","keys":0}]})"));
    const std::vector<std::string> want = {
        "exporters[0].url: kafka:// carries format \"ipfix\" or \"jsonl\"",
        "exporters[0].url: NetFlow goes over udp:// only",
        "exporters[1].url: kafka:// carries format \"ipfix\" or \"jsonl\"",
        "exporters[2].keys: applies to kafka:// exporters only",
        "exporters[3].kafka.x: expected a string, an integer or a boolean, got an array",
    };
    for (const auto& w : want) EXPECT_NE(std::find(p.begin(), p.end(), w), p.end()) << w;
    EXPECT_TRUE(
        std::any_of(p.begin(), p.end(), [](const std::string& s) { return s.rfind("exporters[4].keys", 0) == 0; }));
}

TEST(Config, ProbeName) {
    const auto c = from_json(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}]})"));
    EXPECT_FALSE(c.probe.empty());  // the host name
    const auto named =
        from_json(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}],"probe":"fra-edge-1"})"));
    EXPECT_EQ(named.probe, "fra-edge-1");
    const auto p = problems_of(json::parse(R"({"ports":[{"device":"net_pcap0,rx_pcap=a.pcap"}],"probe":"two words"})"));
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0], "probe: expected 1 to 64 of letters, digits, '.', '_', '-', ':', got \"two words\"");
}
