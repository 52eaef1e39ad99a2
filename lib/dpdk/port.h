// DPDK port bring-up for weir: per-driver profiles (drivers-config/*.json), queue and
// descriptor counts, symmetric RSS so both directions of a conversation reach one worker,
// and the RX timestamp source. Control plane only, at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct rte_mempool;

namespace weir::dpdk {

struct DriverProfile {
    std::string driver;          // DPDK driver name as rte_eth_dev_info reports it
    std::string source;          // file it came from, or "built-in default"
    uint16_t rx_descriptors = 1024;
    std::string rss_mode = "symmetric_key";  // symmetric_key | kernel_fanout | none
    std::vector<std::string> rss_functions = {"ipv4", "ipv6", "tcp", "udp"};
    std::string timestamps = "tsc";          // tsc | dynfield_us | dynfield_ns: who stamps each packet, in what unit
    bool promiscuous = true;
};

// Loads `dir`/`driver`.json; without that file, the built-in default (and says so in source).
// Throws std::runtime_error naming the file and field for a bad profile.
DriverProfile load_profile(const std::string& dir, const std::string& driver);

struct PortInfo {
    uint16_t id = 0;
    std::string name;
    std::string driver;
    uint16_t queues = 0;
    uint16_t rx_descriptors = 0;
    uint32_t dynfield_ns_per_unit = 0;  // 0: stamp packets from the TSC at RX
    std::string rss;  // what distributes packets across queues, for the start-up log
    DriverProfile profile;
};

// Configures and starts port `id` with `queues` RX queues (queue q takes mbufs from pools[q]).
// `what` names the port in messages ("ports[0]"). Throws std::runtime_error with the reason.
PortInfo start_port(uint16_t id, uint16_t queues, const std::vector<rte_mempool*>& pools, uint16_t rx_desc_override,
                    const std::string& profile_dir, const std::string& what);

// Offset and flag of the mbuf RX timestamp dynfield, once a PMD registered it; -1/0 otherwise.
struct TimestampField {
    int offset = -1;
    uint64_t flag = 0;
};
TimestampField timestamp_field();

// The 40..52-byte Toeplitz key made of repeated 0x6d5a: symmetric for any src/dst swap.
std::vector<uint8_t> symmetric_rss_key(size_t len);

}  // namespace weir::dpdk
