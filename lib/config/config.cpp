// SPDX-License-Identifier: BSD-3-Clause
#include "config/config.h"

#include <arpa/inet.h>

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>
#include <sstream>

namespace weir::config {

using nlohmann::json;

namespace {

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : "\n") + x;
    return s;
}

// Walks one JSON object: typed getters record a problem (with the path) instead of throwing,
// and unknown keys are reported when the object is done.
class Reader {
public:
    Reader(const json& obj, std::string path, std::vector<std::string>& problems)
        : obj_(obj), path_(std::move(path)), problems_(problems) {
        if (!obj_.is_object()) problem(path_.empty() ? "(top level)" : path_, "expected an object, got " + kind(obj_));
    }
    ~Reader() {
        if (!obj_.is_object()) return;
        for (auto it = obj_.begin(); it != obj_.end(); ++it)
            if (!seen_.count(it.key())) problem(at(it.key()), "unknown key");
    }

    std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
    const json* get(const std::string& key) {
        seen_.insert(key);
        if (!obj_.is_object() || !obj_.contains(key)) return nullptr;
        return &obj_.at(key);
    }

    template <class T>
    void integer(const std::string& key, T& out, int64_t lo, int64_t hi) {
        const json* v = get(key);
        if (!v) return;
        if (!v->is_number_integer()) return problem(at(key), "expected an integer, got " + kind(*v));
        const int64_t x = v->get<int64_t>();
        if (x < lo || x > hi)
            return problem(at(key),
                           "expected " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + v->dump());
        out = static_cast<T>(x);
    }
    void number(const std::string& key, double& out, double lo, double hi) {
        const json* v = get(key);
        if (!v) return;
        if (!v->is_number()) return problem(at(key), "expected a number, got " + kind(*v));
        const double x = v->get<double>();
        if (!(x >= lo && x <= hi)) {
            std::ostringstream os;
            os << "expected " << lo << ".." << hi << ", got " << v->dump();
            return problem(at(key), os.str());
        }
        out = x;
    }
    void string(const std::string& key, std::string& out) {
        const json* v = get(key);
        if (!v) return;
        if (!v->is_string()) return problem(at(key), "expected a string, got " + kind(*v));
        out = v->get<std::string>();
    }
    // One of `words` (in the order of the enum's values, from 0), as the enum.
    template <class E>
    void word(const std::string& key, E& out, std::initializer_list<const char*> words) {
        const json* v = get(key);
        if (!v) return;
        if (!v->is_string()) return problem(at(key), "expected a string, got " + kind(*v));
        const std::string w = v->get<std::string>();
        std::string list;
        size_t i = 0;
        for (const char* x : words) {
            if (w == x) {
                out = static_cast<E>(i);
                return;
            }
            list += i == 0 ? "" : i + 1 == words.size() ? " or " : ", ";
            list += '"';
            list += x;
            list += '"';
            ++i;
        }
        problem(at(key), "expected " + list + ", got \"" + w + "\"");
    }
    void boolean(const std::string& key, bool& out) {
        const json* v = get(key);
        if (!v) return;
        if (!v->is_boolean()) return problem(at(key), "expected true or false, got " + kind(*v));
        out = v->get<bool>();
    }
    void problem(const std::string& where, const std::string& what) { problems_.push_back(where + ": " + what); }

    static std::string kind(const json& v) { return describe_json(v); }

private:
    const json& obj_;
    std::string path_;
    std::vector<std::string>& problems_;
    std::set<std::string> seen_;
};

}  // namespace

std::string describe_json(const json& v) {
    if (v.is_object()) return "an object";
    if (v.is_array()) return "an array";
    if (v.is_string()) return "a string " + v.dump();
    if (v.is_boolean()) return "a boolean " + v.dump();
    if (v.is_null()) return "null";
    return "a number " + v.dump();
}

const char* format_name(Format f) {
    static const char* const names[] = {"ipfix", "netflow9", "netflow5", "jsonl", "clickhouse"};
    return names[static_cast<int>(f)];
}
const char* mode_name(Mode m) { return m == Mode::kBiflow ? "biflow" : "uniflow"; }
const char* time_unit_name(TimeUnit u) { return u == TimeUnit::kNs ? "ns" : u == TimeUnit::kUs ? "us" : "ms"; }
const char* scheme_name(Scheme s) {
    static const char* const names[] = {"", "udp", "tcp", "file", "http", "https", "kafka"};
    return names[static_cast<int>(s)];
}

const char* tunnel_mode_name(packet::TunnelMode m) {
    switch (m) {
        case packet::TunnelMode::kOuter: return "outer";
        case packet::TunnelMode::kInner: return "inner";
        case packet::TunnelMode::kBoth: return "both";
    }
    return "?";
}

packet::DecodeOptions Tunnels::decode_options(bool macs, bool mpls) const {
    packet::DecodeOptions o;
    o.mode = mode;
    o.max_depth = static_cast<uint8_t>(max_depth);
    o.want_macs = macs;
    o.want_mpls = mpls;
    o.clear_udp_ports();
    for (const auto& [type, ports] : udp_ports)
        for (uint16_t p : ports) o.set_udp_port(p, type);
    return o;
}

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join(problems)), problems_(std::move(problems)) {}

namespace {

// kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC: the bootstrap brokers (port 9092 unless given) and the topic.
void parse_kafka_url(const std::string& url, const std::string& rest, Exporter& out) {
    const auto slash = rest.find('/');
    const std::string brokers = rest.substr(0, slash);
    const std::string topic = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (topic.empty()) throw std::invalid_argument("expected kafka://BROKER:PORT/TOPIC, got \"" + url + "\"");
    if (topic.size() > 249 || topic == "." || topic == "..")
        throw std::invalid_argument("topic \"" + topic + "\" is not a Kafka topic name");
    for (char ch : topic)
        if (!isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-')
            throw std::invalid_argument("topic \"" + topic +
                                        "\": Kafka topic names take letters, digits, '.', '_' and '-'");
    std::string list;
    size_t start = 0;
    while (start <= brokers.size()) {
        const auto comma = brokers.find(',', start);
        const std::string b = brokers.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        Exporter one;
        parse_url(
            "tcp://" +
                (b.find(':') == std::string::npos || (b[0] == '[' && b.find("]:") == std::string::npos) ? b + ":9092"
                                                                                                        : b),
            one);
        if (!list.empty()) list += ',';
        list += (one.host.find(':') != std::string::npos ? "[" + one.host + "]" : one.host) + ":" +
            std::to_string(one.port);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    out.url = url;
    out.scheme = Scheme::kKafka;
    out.host = list;
    out.port = 0;
    out.path = topic;
}

}  // namespace

void parse_url(const std::string& url, Exporter& out) {
    const auto sep = url.find("://");
    if (sep == std::string::npos) throw std::invalid_argument("expected udp://HOST:PORT, got \"" + url + "\"");
    const std::string scheme = url.substr(0, sep);
    if (scheme == "file") {
        const std::string path = url.substr(sep + 3);
        if (path.empty() || path[0] != '/')
            throw std::invalid_argument("expected file:///ABSOLUTE/PATH, got \"" + url + "\"");
        out.url = url;
        out.scheme = Scheme::kFile;
        out.path = path;
        return;
    }
    if (scheme == "kafka") {
        parse_kafka_url(url, url.substr(sep + 3), out);
        return;
    }
    if (scheme != "udp" && scheme != "tcp" && scheme != "http" && scheme != "https")
        throw std::invalid_argument("transport \"" + scheme +
                                    "\" is not supported (udp, tcp, file, http, https, kafka)");
    std::string rest = url.substr(sep + 3);
    std::string host, port;
    if (!rest.empty() && rest[0] == '[') {
        const auto close = rest.find(']');
        if (close == std::string::npos) throw std::invalid_argument("unterminated [IPv6] address in \"" + url + "\"");
        host = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        if (!rest.empty() && rest[0] != ':') throw std::invalid_argument("expected :PORT after ] in \"" + url + "\"");
        port = rest.empty() ? "" : rest.substr(1);
    } else {
        const auto colon = rest.rfind(':');
        host = rest.substr(0, colon);
        port = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
    if (host.empty()) throw std::invalid_argument("no host in \"" + url + "\"");
    unsigned long p = scheme == "http" ? 8123 : scheme == "https" ? 8443 : 4739;
    if (!port.empty() && port.back() == '/') port.pop_back();  // http://host:8123/
    if (!port.empty()) {
        size_t used = 0;
        try {
            p = std::stoul(port, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != port.size() || p < 1 || p > 65535)
            throw std::invalid_argument("port must be 1..65535, got \"" + port + "\"");
    }
    out.url = url;
    out.scheme = scheme == "udp" ? Scheme::kUdp
        : scheme == "tcp"        ? Scheme::kTcp
        : scheme == "http"       ? Scheme::kHttp
                                 : Scheme::kHttps;
    out.host = host;
    out.port = static_cast<uint16_t>(p);
}

Config from_json(const json& j) {
    Config c;
    std::vector<std::string> problems;
    {
        Reader top(j, "", problems);
        if (const json* eal = top.get("eal")) {
            if (!eal->is_array())
                top.problem("eal", "expected an array of strings, got " + Reader::kind(*eal));
            else
                for (size_t i = 0; i < eal->size(); ++i) {
                    if (!(*eal)[i].is_string())
                        top.problem("eal[" + std::to_string(i) + "]", "expected a string");
                    else
                        c.eal.push_back((*eal)[i].get<std::string>());
                }
        }
        if (const json* ports = top.get("ports")) {
            if (!ports->is_array())
                top.problem("ports", "expected an array, got " + Reader::kind(*ports));
            else
                for (size_t i = 0; i < ports->size(); ++i) {
                    const std::string path = "ports[" + std::to_string(i) + "]";
                    Reader r((*ports)[i], path, problems);
                    Port p;
                    r.string("device", p.device);
                    r.integer("rx_descriptors", p.rx_descriptors, 0, 32768);
                    r.integer("ifindex", p.ifindex, 1, 0xFFFFFFFFll);
                    r.string("name", p.if_name);
                    if (p.if_name.size() > 64) r.problem(r.at("name"), "at most 64 characters");
                    std::string dir;
                    r.string("direction", dir);
                    if (dir == "ingress")
                        p.direction = 0;
                    else if (dir == "egress")
                        p.direction = 1;
                    else if (!dir.empty())
                        r.problem(r.at("direction"), "expected \"ingress\" or \"egress\", got \"" + dir + "\"");
                    if ((*ports)[i].is_object() && p.device.empty()) r.problem(r.at("device"), "required");
                    // A device is a PCI address (with its ':'), a bus-qualified name (auxiliary:...) or a
                    // vdev (net_...); a bare word is most often a kernel interface name.
                    const std::string name = p.name();
                    if (!name.empty() && name.find(':') == std::string::npos && name.rfind("net_", 0) != 0)
                        r.problem(r.at("device"),
                                  "\"" + name +
                                      "\" is neither a PCI address (0000:3b:00.0) nor a DPDK "
                                      "virtual device; for the kernel interface " +
                                      name + " use \"net_af_packet0,iface=" + name + "\"");
                    c.ports.push_back(p);
                }
        }
        top.integer("workers", c.workers, 1, 128);
        top.string("probe", c.probe);
        if (j.is_object() && j.contains("probe")) {
            bool ok = !c.probe.empty() && c.probe.size() <= 64;
            for (char ch : c.probe)
                ok =
                    ok && (isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-' || ch == ':');
            if (!ok)
                top.problem("probe",
                            "expected 1 to 64 of letters, digits, '.', '_', '-', ':', got \"" + c.probe + "\"");
        } else {
            char host[256] = {};
            if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) std::strcpy(host, "weir");
            c.probe = host;
            if (c.probe.size() > 64) c.probe.resize(64);
        }
        if (const json* ft = top.get("flow_table"); ft) {
            Reader r(*ft, "flow_table", problems);
            r.integer("capacity_per_worker", c.flow_capacity, 16, 1 << 28);
        }
        if (const json* t = top.get("timeouts"); t) {
            Reader r(*t, "timeouts", problems);
            r.number("idle_s", c.idle_timeout_s, 0.001, 86400);
            r.number("active_s", c.active_timeout_s, 0.001, 86400);
            r.number("tcp_end_s", c.tcp_end_timeout_s, 0, 86400);
        }
        if (const json* ip = top.get("ipfix"); ip) {
            Reader r(*ip, "ipfix", problems);
            r.integer("mtu", c.mtu, 576, 65535);
            r.integer("observation_domain", c.observation_domain, 0, 0xFFFFFF00);
            r.integer("enterprise_number", c.enterprise_number, 1, 0xFFFFFFFF);
            r.integer("template_refresh_s", c.template_refresh_s, 1, 86400);
            r.integer("template_refresh_messages", c.template_refresh_messages, 1, 1 << 30);
            r.integer("max_delay_ms", c.max_delay_ms, 1, 60000);
            r.integer("buffers_per_worker", c.export_buffers, 16, 1 << 20);
        }
        if (const json* ex = top.get("exporters")) {
            if (!ex->is_array())
                top.problem("exporters", "expected an array, got " + Reader::kind(*ex));
            else
                for (size_t i = 0; i < ex->size(); ++i) {
                    const std::string path = "exporters[" + std::to_string(i) + "]";
                    Reader r((*ex)[i], path, problems);
                    Exporter e;
                    r.word("format", e.format, {"ipfix", "netflow9", "netflow5", "jsonl", "clickhouse"});
                    r.string("url", e.url);
                    r.word("mode", e.mode, {"uniflow", "biflow"});
                    r.word("time_unit", e.time_unit, {"ms", "us", "ns"});
                    r.number("rotate_mb", e.rotate_mb, 0, 1 << 20);
                    r.number("queue_mb", e.queue_mb, 0.0625, 4096);
                    r.boolean("options", e.options);
                    r.integer("rotate_s", e.rotate_s, 0, 86400 * 365);
                    r.string("table", e.table);
                    r.integer("batch_rows", e.batch_rows, 1, 10'000'000);
                    r.integer("flush_s", e.flush_s, 1, 3600);
                    r.integer("queue_batches", e.queue_batches, 1, 100000);
                    r.boolean("macs", e.macs);
                    r.boolean("mpls", e.mpls);
                    r.boolean("direction", e.direction);
                    r.boolean("rtt", e.rtt);
                    r.boolean("sizes", e.sizes);
                    r.string("source", e.source);
                    r.string("user", e.user);
                    r.string("password", e.password);
                    r.string("ca_file", e.ca_file);
                    r.boolean("compress", e.compress);
                    r.integer("keys", e.keys, 1, 65536);
                    if (const json* k = r.get("kafka"); k) {
                        if (!k->is_object())
                            r.problem(r.at("kafka"),
                                      "expected an object of librdkafka properties, got " + Reader::kind(*k));
                        else
                            for (const auto& [name, v] : k->items()) {
                                if (v.is_string())
                                    e.kafka.emplace_back(name, v.get<std::string>());
                                else if (v.is_number_integer() || v.is_boolean())
                                    e.kafka.emplace_back(name, v.dump());
                                else
                                    r.problem(r.at("kafka") + "." + name,
                                              "expected a string, an integer or a boolean, got " + Reader::kind(v));
                            }
                    }
                    if (e.format != Format::kClickhouse) {
                        const json& o = (*ex)[i];
                        for (const char* k : {"user", "password", "ca_file", "compress"})
                            if (o.is_object() && o.contains(k))
                                r.problem(r.at(k), "applies to format \"clickhouse\" only");
                    }
                    if (!e.password.empty() && e.user.empty()) r.problem(r.at("password"), "needs \"user\"");
                    r.integer("dscp", e.dscp, 0, 63);
                    if (!e.source.empty()) {
                        in6_addr a6;
                        in_addr a4;
                        if (inet_pton(AF_INET, e.source.c_str(), &a4) != 1 &&
                            inet_pton(AF_INET6, e.source.c_str(), &a6) != 1)
                            r.problem(r.at("source"), "expected an IPv4 or IPv6 address, got \"" + e.source + "\"");
                    }
                    const bool netflow = e.netflow();
                    if (netflow && e.mode != Mode::kUniflow)
                        r.problem(r.at("mode"), "biflow needs format \"ipfix\" (RFC 5103)");
                    if (netflow && e.time_unit != TimeUnit::kMs)
                        r.problem(r.at("time_unit"), "NetFlow carries milliseconds since boot only");
                    if ((*ex)[i].is_object()) {
                        if (e.url.empty())
                            r.problem(r.at("url"), "required");
                        else
                            try {
                                parse_url(e.url, e);
                            } catch (const std::invalid_argument& err) {
                                r.problem(r.at("url"), err.what());
                            }
                    }
                    const bool kafka = e.scheme == Scheme::kKafka;
                    if (kafka && e.format != Format::kIpfix && e.format != Format::kJsonl)
                        r.problem(r.at("url"), "kafka:// carries format \"ipfix\" or \"jsonl\"");
                    if (!kafka && e.scheme != Scheme::kNone)
                        for (const char* k : {"kafka", "keys"})
                            if ((*ex)[i].is_object() && (*ex)[i].contains(k))
                                r.problem(r.at(k), "applies to kafka:// exporters only");
                    const bool web = e.scheme == Scheme::kHttp || e.scheme == Scheme::kHttps;
                    const bool clickhouse = e.format == Format::kClickhouse;
                    if (clickhouse != web && e.scheme != Scheme::kNone)
                        r.problem(r.at("url"),
                                  clickhouse ? "clickhouse takes http(s)://HOST:PORT"
                                             : "http(s):// is for format \"clickhouse\"");
                    if (!e.ca_file.empty() && e.scheme != Scheme::kHttps)
                        r.problem(r.at("ca_file"), "applies to https:// only");
                    if (netflow && kafka) r.problem(r.at("url"), "NetFlow goes over udp:// only");
                    if (e.format == Format::kJsonl && e.scheme == Scheme::kUdp)
                        r.problem(r.at("url"), "JSON lines go to file:// or tcp://");
                    if (netflow && e.scheme != Scheme::kNone && e.scheme != Scheme::kUdp && !kafka)
                        r.problem(r.at("url"), "NetFlow goes over udp:// only");
                    if ((e.rotate_mb || e.rotate_s) && e.scheme != Scheme::kFile && !e.url.empty())
                        r.problem(r.at("rotate_mb"), "rotation applies to file:// exporters only");
                    if (e.macs && e.format == Format::kNetflow5)
                        r.problem(r.at("macs"), "NetFlow v5 has no MAC address fields");
                    for (const char* k : {"mpls", "direction", "rtt", "sizes"}) {
                        const json& o = (*ex)[i];
                        if (netflow && o.is_object() && o.contains(k) && o[k].is_boolean() && o[k].get<bool>())
                            r.problem(r.at(k),
                                      "NetFlow records do not carry it here; use format \"ipfix\", \"jsonl\" or "
                                      "\"clickhouse\"");
                    }
                    if ((!e.source.empty() || e.dscp >= 0) &&
                        (e.scheme == Scheme::kFile || e.scheme == Scheme::kHttp || kafka))
                        r.problem(r.at(e.source.empty() ? "dscp" : "source"),
                                  "applies to udp:// and tcp:// exporters only");
                    c.exporters.push_back(e);
                }
        }
        if (const json* t = top.get("capture"); t) {
            Reader r(*t, "capture", problems);
            r.string("dir", c.capture.dir);
            r.integer("packets_per_flow", c.capture.packets_per_flow, 1, 65535);
            r.integer("snaplen", c.capture.snaplen, 64, 65535);
            r.integer("slots_per_worker", c.capture.slots_per_worker, 16, 1 << 20);
            r.number("file_mb", c.capture.file_mb, 0.01, 1 << 20);
            r.integer("file_s", c.capture.file_s, 0, 86400 * 7);
            r.number("budget_mb", c.capture.budget_mb, 0.01, 1 << 30);
        }
        if (const json* t = top.get("inspect"); t) {
            Reader r(*t, "inspect", problems);
            r.string("rules", c.inspect.rules);
            r.integer("depth", c.inspect.depth, 1, 1 << 20);
            r.integer("packets", c.inspect.packets, 1, 1000);
            r.integer("streams_per_worker", c.inspect.streams_per_worker, 1, 1 << 22);
            r.integer("names_per_worker", c.inspect.names_per_worker, 1, 1 << 24);
            r.integer("carry", c.inspect.carry, 0, 1 << 22);
        }
        if (const json* t = top.get("detect"); t) {
            Reader r(*t, "detect", problems);
            auto& d = c.detect;
            r.boolean("enabled", d.enabled);
            r.number("interval_s", d.interval_s, 0.1, 60);
            r.number("window_s", d.window_s, 0.1, 86400);
            r.number("hold_down_s", d.hold_down_s, 0, 86400);
            r.string("events", d.events);
            if (!d.events.empty()) {
                Exporter probe;
                try {
                    parse_url(d.events, probe);
                    if (probe.scheme == Scheme::kHttp || probe.scheme == Scheme::kHttps)
                        r.problem(r.at("events"), "expected file://, tcp:// or udp://, got \"" + d.events + "\"");
                } catch (const std::invalid_argument& e) {
                    r.problem(r.at("events"), e.what());
                }
            }
            r.integer("sources_per_worker", d.sources_per_worker, 64, 1 << 24);
            r.integer("pairs_per_worker", d.pairs_per_worker, 64, 1 << 24);
            r.integer("destinations_per_worker", d.destinations_per_worker, 64, 1 << 22);
            r.integer("promote_packets", d.promote_packets, 1, 1 << 24);
            if (const json* ap = r.get("amplifier_ports"); ap) {
                std::vector<uint16_t> ports;
                if (!ap->is_array())
                    r.problem(r.at("amplifier_ports"), "expected an array of UDP ports, got " + Reader::kind(*ap));
                for (size_t i = 0; ap->is_array() && i < ap->size(); ++i) {
                    const json& v = (*ap)[i];
                    if (v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= 65535)
                        ports.push_back(static_cast<uint16_t>(v.get<int64_t>()));
                    else
                        r.problem(r.at("amplifier_ports") + "[" + std::to_string(i) + "]",
                                  "expected a UDP port 1..65535, got " + Reader::kind(v));
                }
                if (ap->is_array()) d.amplifier_ports = std::move(ports);
            }
            if (const json* th = r.get("thresholds"); th) {
                Reader tr(*th, "detect.thresholds", problems);
                tr.integer("vertical_ports", d.vertical_ports, 2, 65536);
                tr.integer("horizontal_hosts", d.horizontal_hosts, 2, 1 << 30);
                tr.integer("sweep_hosts", d.sweep_hosts, 2, 1 << 30);
                tr.number("max_answered", d.max_answered, 0, 1);
                tr.number("syn_per_s", d.syn_per_s, 1, 1e12);
                tr.number("max_completed", d.max_completed, 0, 1);
                tr.number("flood_pps", d.flood_pps, 1, 1e12);
                tr.number("flood_bps", d.flood_bps, 1, 1e15);
                tr.integer("amp_responses", d.amp_responses, 1, 1 << 30);
                tr.integer("amp_sources", d.amp_sources, 1, 1 << 30);
                tr.integer("dns_queries", d.dns_queries, 1, 1 << 30);
                tr.integer("dns_long_bytes", d.dns_long_bytes, 20, 65535);
                tr.number("dns_long_share", d.dns_long_share, 0, 1);
            }
        }
        if (const json* z = top.get("zones"); z) {
            if (!z->is_object()) {
                top.problem("zones", "expected an object of zone names and prefix lists, got " + Reader::kind(*z));
            } else {
                for (auto it = z->begin(); it != z->end(); ++it) {
                    const std::string at = "zones." + it.key();
                    zones::ZoneSpec spec{it.key(), {}};
                    if (!it->is_array() || it->empty()) {
                        problems.push_back(at + ": expected a non-empty array of prefixes (\"10.0.0.0/8\"), got " +
                                           Reader::kind(*it));
                        continue;
                    }
                    for (size_t i = 0; i < it->size(); ++i) {
                        const json& v = (*it)[i];
                        const std::string ai = at + "[" + std::to_string(i) + "]";
                        if (!v.is_string()) {
                            problems.push_back(ai + ": expected a prefix string, got " + Reader::kind(v));
                            continue;
                        }
                        try {
                            spec.prefixes.push_back(zones::parse_prefix(v.get<std::string>()));
                        } catch (const std::invalid_argument& e) {
                            problems.push_back(ai + ": " + e.what());
                        }
                    }
                    c.zones.push_back(std::move(spec));
                }
                try {
                    zones::ZoneMap check(c.zones);
                } catch (const std::invalid_argument& e) {
                    problems.push_back(std::string("zones: ") + e.what());
                }
            }
        }
        if (const json* m = top.get("matrix"); m) {
            Reader r(*m, "matrix", problems);
            r.integer("max_cells", c.matrix_cells, 16, 1 << 24);
        }
        if (const json* pj = top.get("policy"); pj) {
            Reader r(*pj, "policy", problems);
            c.policy.on = true;
            const json* allow = r.get("allow");
            if (!allow || !allow->is_array()) {
                r.problem(r.at("allow"),
                          std::string("expected an array of allowed services ({\"from\": ZONE, \"to\": "
                                      "ZONE, \"proto\": \"tcp\", \"ports\": [443]}), got ") +
                              (allow ? Reader::kind(*allow) : std::string("nothing")));
            } else {
                std::set<std::string> names = {"any", "other"};
                for (const auto& z : c.zones) names.insert(z.name);
                for (size_t i = 0; i < allow->size(); ++i) {
                    Reader ar((*allow)[i], "policy.allow[" + std::to_string(i) + "]", problems);
                    zones::AllowRule rule;
                    ar.string("from", rule.from);
                    ar.string("to", rule.to);
                    for (const std::string* zn : {&rule.from, &rule.to})
                        if (!names.count(*zn))
                            ar.problem(ar.at(zn == &rule.from ? "from" : "to"),
                                       "no zone named \"" + *zn +
                                           "\" (zones are defined under \"zones\"; \"any\" and "
                                           "\"other\" are built in)");
                    if (const json* pr = ar.get("proto"); pr) {
                        static const std::map<std::string, int> kProtos = {
                            {"any", -1},   {"tcp", 6},   {"udp", 17},      {"icmp", 1}, {"icmpv6", 58},
                            {"sctp", 132}, {"dccp", 33}, {"udplite", 136}, {"gre", 47}, {"esp", 50}};
                        if (pr->is_number_integer() && pr->get<int64_t>() >= 0 && pr->get<int64_t>() <= 255)
                            rule.proto = static_cast<int>(pr->get<int64_t>());
                        else if (pr->is_string() && kProtos.count(pr->get<std::string>()))
                            rule.proto = kProtos.at(pr->get<std::string>());
                        else
                            ar.problem(ar.at("proto"),
                                       "expected tcp, udp, icmp, icmpv6, sctp, dccp, udplite, gre, esp, any or a "
                                       "protocol number 0..255, got " +
                                           Reader::kind(*pr));
                    }
                    if (const json* ports = ar.get("ports"); ports) {
                        if (!ports->is_array()) {
                            ar.problem(ar.at("ports"),
                                       "expected an array of ports (443) and ranges (\"8000-8080\"), "
                                       "got " +
                                           Reader::kind(*ports));
                        } else {
                            for (size_t k = 0; k < ports->size(); ++k) {
                                const json& v = (*ports)[k];
                                const std::string pa = ar.at("ports") + "[" + std::to_string(k) + "]";
                                unsigned lo = 0, hi = 0;
                                char tail = 0;
                                if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= 65535) {
                                    lo = hi = static_cast<unsigned>(v.get<int64_t>());
                                } else if (v.is_string() &&
                                           std::sscanf(v.get<std::string>().c_str(), "%u-%u%c", &lo, &hi, &tail) == 2 &&
                                           lo <= hi && hi <= 65535) {
                                } else {
                                    problems.push_back(pa + ": expected a port 0..65535 or a range \"LO-HI\", got " +
                                                       Reader::kind(v));
                                    continue;
                                }
                                rule.ports.push_back({static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)});
                            }
                        }
                    }
                    c.policy.allow.push_back(std::move(rule));
                }
            }
        }
        if (c.capture.on() && c.inspect.rules.empty())
            problems.push_back("capture.dir: capture needs payload rules (inspect.rules) with \"capture\": true");
        if (c.policy.on && !c.detect.enabled)
            problems.push_back("policy: out_of_policy events are detection events: the policy needs detect.enabled");
        if (const json* t = top.get("tunnels"); t) {
            Reader r(*t, "tunnels", problems);
            std::string mode = tunnel_mode_name(c.tunnels.mode);
            r.string("mode", mode);
            if (mode == "outer")
                c.tunnels.mode = packet::TunnelMode::kOuter;
            else if (mode == "inner")
                c.tunnels.mode = packet::TunnelMode::kInner;
            else if (mode == "both")
                c.tunnels.mode = packet::TunnelMode::kBoth;
            else
                r.problem(r.at("mode"), "expected \"outer\", \"inner\" or \"both\", got \"" + mode + "\"");
            r.integer("max_depth", c.tunnels.max_depth, 1, 8);
            r.integer("contexts_per_worker", c.tunnels.contexts_per_worker, 16, 1 << 24);
            r.integer("handoff_ring", c.tunnels.handoff_ring, 64, 1 << 20);
            if (const json* u = r.get("udp_ports"); u) {
                Reader ur(*u, "tunnels.udp_ports", problems);
                std::set<std::string> given;
                for (auto& [type, ports] : c.tunnels.udp_ports) {
                    const std::string name = packet::tunnel_name(type);
                    const json* v = ur.get(name);
                    if (!v) continue;
                    given.insert(name);
                    const std::string at = ur.at(name);
                    if (!v->is_array()) {
                        ur.problem(at, "expected an array of UDP ports, got " + Reader::kind(*v));
                        continue;
                    }
                    ports.clear();
                    for (size_t i = 0; i < v->size(); ++i) {
                        const json& x = (*v)[i];
                        if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > 65535)
                            ur.problem(at + "[" + std::to_string(i) + "]", "expected a port 1..65535, got " + x.dump());
                        else
                            ports.push_back(static_cast<uint16_t>(x.get<int64_t>()));
                    }
                }
                std::map<uint16_t, std::string> owner;
                size_t total = 0;
                for (const auto& [type, ports] : c.tunnels.udp_ports) {
                    const std::string name = packet::tunnel_name(type);
                    total += ports.size();
                    for (uint16_t p : ports) {
                        auto [it, fresh] = owner.emplace(p, name);
                        if (!fresh)
                            ur.problem(ur.at(given.count(name) ? name : it->second),
                                       "port " + std::to_string(p) + " is listed for both " + it->second + " and " +
                                           name + " (defaults count: give both lists)");
                    }
                }
                if (total > 32)
                    ur.problem("tunnels.udp_ports", "at most 32 ports in all, got " + std::to_string(total));
            }
        }
        top.integer("burst", c.burst, 1, 64);
        top.integer("mbufs_per_queue", c.mbufs_per_queue, 1024, 1 << 20);
        top.number("stats_interval_s", c.stats_interval_s, 0, 86400);
        if (const json* sm = top.get("sampling"); sm) {
            Reader r(*sm, "sampling", problems);
            r.integer("interval", c.sample_interval, 1, 1 << 24);
            std::string mode = "deterministic";
            r.string("mode", mode);
            if (mode == "random")
                c.sample_random = true;
            else if (mode != "deterministic")
                r.problem(r.at("mode"), "expected \"deterministic\" or \"random\", got \"" + mode + "\"");
            if (c.sample_interval == 1) c.sample_interval = 0;
        }
        {
            std::string level = log::level_name(c.log_level);
            top.string("log_level", level);
            if (!log::parse_level(level, c.log_level))
                top.problem("log_level", "expected error, warning, notice, info or debug, got \"" + level + "\"");
        }
        top.string("drivers_config", c.drivers_config);
        top.string("summary_json", c.summary_json);
        top.boolean("hold_after_replay", c.hold_after_replay);
        if (const json* m = top.get("management"); m) {
            Reader r(*m, "management", problems);
            // ADDRESS:PORT, or "none"/"" for no server.
            auto listen_address = [&r](const char* key, std::string& v, const char* example) {
                r.string(key, v);
                if (v.empty() || v == "none") {
                    v.clear();
                    return;
                }
                const auto colon = v.rfind(':');
                unsigned long port = 0;
                try {
                    port = colon == std::string::npos ? 0 : std::stoul(v.substr(colon + 1));
                } catch (const std::exception&) {}
                if (colon == 0 || port < 1 || port > 65535)
                    r.problem(
                        r.at(key),
                        std::string("expected ADDRESS:PORT (e.g. ") + example + ") or \"none\", got \"" + v + "\"");
            };
            listen_address("listen", c.management, "127.0.0.1:9471");
            listen_address("metrics_listen", c.metrics_listen, "0.0.0.0:9472");
            r.string("web_config", c.web_config);
            r.number("history_step_s", c.history_step_s, 1, 300);
        }
    }
    if (problems.empty() && c.ports.empty()) problems.push_back("ports: at least one port is required");
    if (c.mtu < 16 + 4 + 2 * 83 + 48) problems.push_back("ipfix.mtu: too small for one IPv6 flow");
    for (size_t i = 0; i < c.exporters.size(); ++i)
        if (c.exporters[i].format == Format::kNetflow5 && c.sample_interval > 0x3FFF)
            problems.push_back("sampling.interval: NetFlow v5 (exporters[" + std::to_string(i) +
                               "]) carries at most 16383, got " + std::to_string(c.sample_interval));
    for (size_t i = 0; i < c.exporters.size(); ++i)
        for (size_t p = 0; c.exporters[i].direction && p < c.ports.size(); ++p)
            if (c.ports[p].direction < 0) {
                problems.push_back("exporters[" + std::to_string(i) + "].direction: ports[" + std::to_string(p) +
                                   "] has no \"direction\" (\"ingress\" or \"egress\") to export");
                break;
            }
    c.replay = !c.ports.empty();
    for (const auto& p : c.ports) c.replay = c.replay && p.device.rfind("net_pcap", 0) == 0;
    // A replay serves metrics only when asked (or held open): scripts run many in a row.
    if (c.replay && !c.hold_after_replay && !(j.is_object() && j.contains("management"))) c.management.clear();
    if (!problems.empty()) throw ConfigError(problems);
    return c;
}

}  // namespace weir::config
