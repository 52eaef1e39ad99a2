// SPDX-License-Identifier: BSD-3-Clause
// weir's configuration: the JSON file's schema, defaults, and validation. Control plane only.
// Every problem found is reported with the JSON path of the field and the reason, all at once;
// nothing is started until the whole configuration is valid.
#pragma once

#include "zones/zones.h"
#include "common/log.h"
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "packet/decode.h"

namespace weir::config {

struct Port {
    std::string device;           // PCI address ("0000:3b:00.0") or vdev ("net_pcap0,rx_pcap=a.pcap")
    uint16_t rx_descriptors = 0;  // 0: the driver profile's value
    uint32_t ifindex = 0;         // exported as ingressInterface (SNMP ifIndex); 0: the DPDK port id
    std::string if_name;          // exported as interfaceName; empty: the DPDK port name
    int direction = -1;           // flowDirection of what it captures: 0 ingress, 1 egress, -1 unsaid
    bool is_vdev() const { return device.rfind("net_", 0) == 0; }
    std::string name() const { return device.substr(0, device.find(',')); }  // DPDK port name
};

// An exporter's settings that are words in the file, parsed once at load; *_name() gives the
// word back (for logs, metrics labels and the status API).
enum class Format : uint8_t { kIpfix, kNetflow9, kNetflow5, kJsonl, kClickhouse };
enum class Mode : uint8_t { kUniflow, kBiflow };  // biflow: RFC 5103
enum class TimeUnit : uint8_t { kMs, kUs, kNs };
enum class Scheme : uint8_t { kNone, kUdp, kTcp, kFile, kHttp, kHttps, kKafka };
const char* format_name(Format f);
const char* mode_name(Mode m);
const char* time_unit_name(TimeUnit u);
const char* scheme_name(Scheme s);

struct Exporter {
    Format format = Format::kIpfix;
    std::string url;  // udp://HOST:PORT, tcp://HOST:PORT, file:///PATH, http(s)://HOST:PORT, kafka://BROKERS/TOPIC
    Scheme scheme = Scheme::kNone;
    std::string host;  // kafka://: the bootstrap brokers, HOST:PORT[,HOST:PORT...]
    uint16_t port = 0;
    std::string path;  // file://; kafka://: the topic
    Mode mode = Mode::kUniflow;
    TimeUnit time_unit = TimeUnit::kMs;
    bool netflow() const { return format == Format::kNetflow9 || format == Format::kNetflow5; }
    double rotate_mb = 0;              // file://: rotate at this size in MiB (0: never)
    uint32_t rotate_s = 0;             // file://: rotate at this age (0: never)
    double queue_mb = 16;              // tcp://: bytes queued for a slow collector before dropping
    bool options = true;               // IPFIX: options records (statistics, interface table)
    std::string table = "weir.flows";  // clickhouse: the table to insert into
    uint32_t batch_rows = 10000;       // clickhouse: rows per INSERT
    uint32_t flush_s = 1;              // clickhouse: a partial batch waits at most this long
    uint32_t queue_batches = 64;       // clickhouse: batches waiting for the server before dropping
    bool macs = false;                 // source and destination MAC addresses in the records
    bool mpls = false;                 // the top MPLS label of the flow's first frame
    bool direction = false;            // flowDirection, from ports[].direction
    bool rtt = false;                  // TCP handshake round trip, client and server side
    bool sizes = false;                // packet-size histogram per direction
    std::string source;                // udp://, tcp://: local address to send from (empty: the kernel's choice)
    int dscp = -1;                     // udp://, tcp://: DSCP of the export packets (-1: leave as is)
    std::string user, password;        // clickhouse: HTTP basic authentication (empty: none)
    std::string ca_file;               // clickhouse over https://: CA bundle (empty: the system's)
    bool compress = true;              // clickhouse: gzip the INSERT bodies
    uint32_t keys = 64;                // kafka://: message keys records are spread over (one conversation: one key)
    std::vector<std::pair<std::string, std::string>> kafka;  // kafka://: librdkafka producer properties
};

// Overlays: which headers flows are keyed on, and how tunnels are recognised.
struct Tunnels {
    packet::TunnelMode mode = packet::TunnelMode::kInner;
    uint32_t max_depth = 4;                // tunnels opened one inside another
    uint32_t contexts_per_worker = 65536;  // distinct tunnels (end points, id) per worker
    uint32_t handoff_ring = 8192;          // packets queued from one worker to another
    // UDP destination ports per tunnel type (Teredo: either port).
    std::vector<std::pair<packet::TunnelType, std::vector<uint16_t>>> udp_ports = {
        {packet::TunnelType::kVxlan, {4789, 8472}}, {packet::TunnelType::kVxlanGpe, {4790}},
        {packet::TunnelType::kGeneve, {6081}},      {packet::TunnelType::kGtpU, {2152}},
        {packet::TunnelType::kGre, {4754}},         {packet::TunnelType::kMpls, {6635}},
        {packet::TunnelType::kTeredo, {3544}}};

    // The decode options these settings make (`macs`: copy MAC addresses).
    packet::DecodeOptions decode_options(bool macs, bool mpls = false) const;
    bool operator==(const Tunnels&) const = default;
};

const char* tunnel_mode_name(packet::TunnelMode m);

// Payload inspection: off unless a rules file is given.
struct Inspect {
    std::string rules;                    // JSON rules file (relative: to the configuration file's folder)
    uint32_t depth = 4096;                // payload bytes inspected per direction of a flow
    uint32_t packets = 8;                 // payload packets inspected per direction at most
    uint32_t streams_per_worker = 65536;  // flows inspected at the same time
    uint32_t names_per_worker = 65536;    // TLS server names / HTTP Hosts held for active flows
    uint32_t carry = 16384;               // findings kept for conversations the active timeout splits
    bool on() const { return !rules.empty(); }
    bool operator==(const Inspect&) const = default;
};

// Selective capture: packets of flows that matched a capture rule, into pcapng files.
struct Capture {
    std::string dir;                   // folder of the files (relative: to the configuration file's); "" off
    uint32_t packets_per_flow = 100;   // from the matching packet on
    uint32_t snaplen = 2048;           // bytes kept of each frame
    uint32_t slots_per_worker = 4096;  // packets waiting for the writer, per worker
    double file_mb = 64;               // rotate at this size
    uint32_t file_s = 300;             // ... or age (0: never by age)
    double budget_mb = 1024;           // all of weir's capture files together; the oldest go first
    bool on() const { return !dir.empty(); }
    bool operator==(const Capture&) const = default;
};

// Detection of scans, sweeps, floods and reflection (lib/detect): on unless switched off.
struct Detect {
    bool enabled = true;
    double interval_s = 1;    // packet time per decision
    double window_s = 60;     // scans, sweeps, reflection, DNS: counted per key over this long
    double hold_down_s = 30;  // an event ends once its condition has not held this long
    std::string events;       // JSON lines of events: file:///PATH, tcp://HOST:PORT, udp://HOST:PORT; "" none
    uint32_t sources_per_worker = 16384;      // (source, probe kind) entries per interval
    uint32_t pairs_per_worker = 16384;        // (source, destination) entries per interval
    uint32_t destinations_per_worker = 4096;  // destinations tracked exactly per interval
    uint32_t promote_packets = 64;            // a destination's packets in an interval before it is tracked
    std::vector<uint16_t> amplifier_ports = {7,    17,    19,    53,    111,   123,   137,  161,  389,
                                             500,  520,   1434,  1900,  3283,  3478,  3702, 4500, 5353,
                                             5683, 10001, 11211, 27015, 32414, 33848, 37810};
    // Thresholds (lib/detect's Thresholds has what each means).
    uint32_t vertical_ports = 100;
    uint32_t horizontal_hosts = 64;
    uint32_t sweep_hosts = 64;
    double max_answered = 0.2;
    double syn_per_s = 100;
    double max_completed = 0.1;
    double flood_pps = 250000;
    double flood_bps = 2e9;
    uint32_t amp_responses = 1000;
    uint32_t amp_sources = 20;
    uint32_t dns_queries = 500;
    uint32_t dns_long_bytes = 128;
    double dns_long_share = 0.5;
    bool operator==(const Detect&) const = default;
};

struct Config {
    std::vector<std::string> eal;  // EAL arguments; empty: weir picks them
    std::vector<Port> ports;
    uint32_t workers = 1;
    uint32_t flow_capacity = 1u << 20;  // per worker
    double idle_timeout_s = 15;
    double active_timeout_s = 60;
    double tcp_end_timeout_s = 1;
    std::vector<Exporter> exporters;
    uint32_t mtu = 1500;
    uint32_t observation_domain = 1;     // worker i exports in domain observation_domain + i
    std::string probe;                   // this probe's name in every record (JSON, ClickHouse, Kafka; IPFIX
                                         // observationDomainName); default: the host name
    uint32_t enterprise_number = 32473;  // IPFIX PEN of weir's own elements (tunnel end points, ...)
    uint32_t template_refresh_s = 60;
    uint32_t template_refresh_messages = 1000;
    uint32_t max_delay_ms = 500;     // a partly filled record batch waits at most this long on its worker
    uint32_t export_buffers = 1024;  // message buffers per worker
    uint32_t burst = 32;
    uint32_t mbufs_per_queue = 8192;
    double stats_interval_s = 10;
    log::Level log_level = log::Level::kInfo;   // weir's own lines above this are not written
    uint32_t sample_interval = 0;               // keep 1 in N packets of every port (0 or 1: all)
    bool sample_random = false;                 // at random, probability 1/N (else every Nth)
    std::string drivers_config;                 // folder of per-driver profiles; empty: built-in path
    std::string summary_json;                   // write the exit summary here as JSON
    std::string management = "127.0.0.1:9471";  // metrics and status API; "" for none
    std::string metrics_listen;                 // /metrics and /healthz only, for scraping from elsewhere; "" for none
    std::string web_config;                     // TLS and basic auth of both listeners (exporter-toolkit YAML); "" none
    double history_step_s = 10;                 // the page's history: a sample this often, a day of them
    bool hold_after_replay = false;             // keep running (flows active) after a replay, until a signal
    bool replay = false;                        // every port is a net_pcap capture: exit at its end
    Tunnels tunnels;
    Inspect inspect;
    Capture capture;
    Detect detect;
    std::vector<zones::ZoneSpec> zones;  // the flow matrix's zones; none: no matrix
    zones::PolicySpec policy;            // the services allowed from zone to zone
    uint32_t matrix_cells = 65536;       // zone x zone x service cells at most

    // Some exporter wants MAC addresses (MPLS labels, handshake times, size histograms): the flow
    // tables keep them.
    bool want(bool Exporter::*field) const {
        for (const auto& e : exporters)
            if (e.*field) return true;
        return false;
    }
    bool want_macs() const { return want(&Exporter::macs); }
};

class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> problems);
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<std::string> problems_;
};

// What a JSON value is, for error messages: "an object", "a string \"x\"", "a number 3", ...
std::string describe_json(const nlohmann::json& v);

// Validates `j` and returns the configuration; throws ConfigError naming every bad field.
Config from_json(const nlohmann::json& j);

// Parses "udp://host:port" ([v6] literal allowed) or "file:///absolute/path"; throws
// std::invalid_argument.
void parse_url(const std::string& url, Exporter& out);

}  // namespace weir::config
