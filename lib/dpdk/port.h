// SPDX-License-Identifier: BSD-3-Clause
// DPDK port bring-up for weir: per-driver profiles (drivers-config/*.json, also compiled in),
// queue and descriptor counts, symmetric RSS so both directions of a conversation reach one
// worker (on the innermost headers where the device can), frame sizes up to jumbo, and the RX
// timestamp source. Control plane only, at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

struct rte_mempool;

namespace weir::dpdk {

// How packets are spread over a port's RX queues: a symmetric Toeplitz key (both directions of
// a conversation to one queue), the kernel's PACKET_FANOUT_HASH (af_packet), or not at all.
enum class RssMode : uint8_t { kSymmetricKey, kKernelFanout, kNone };
// Who stamps each packet: the worker's TSC at receive, or the PMD in the mbuf's timestamp
// dynfield, in microseconds or nanoseconds (net_pcap: the capture's own times).
enum class Timestamps : uint8_t { kTsc, kDynfieldUs, kDynfieldNs };

struct DriverProfile {
    std::string driver;  // DPDK driver name as rte_eth_dev_info reports it
    std::string source;  // where it came from (a file, the compiled-in copy, or the generic default)
    uint16_t rx_descriptors = 1024;
    RssMode rss_mode = RssMode::kSymmetricKey;
    std::vector<std::string> rss_functions = {"ipv4", "ipv6", "tcp", "udp"};
    bool rss_innermost = false;  // hash tunneled packets on their innermost headers (rss.level "innermost")
    Timestamps timestamps = Timestamps::kTsc;  // who stamps each packet, in what unit
    bool promiscuous = true;
    uint32_t max_frame = 9728;  // largest Ethernet frame (FCS excluded) to receive whole
    bool scatter = true;        // larger frames in chained buffers, where the device can
    uint32_t data_room = 0;     // bytes per packet buffer the driver needs (0: from max_frame and scatter)
    bool set_mtu = true;        // program the device's MTU from max_frame (not for kernel interfaces)
    std::vector<std::pair<std::string, std::string>> devargs;  // added to a vdev's device string unless given
};

// The shipped profiles as compiled in: driver name -> the JSON text of drivers-config/DRIVER.json.
const std::vector<std::pair<std::string, std::string>>& builtin_profiles();

// `dir`/`driver`.json when dir is not empty and the file exists, else the compiled-in copy of the
// shipped profile, else a generic default (and says which in `source`). Throws
// std::runtime_error naming the file and field for a bad profile.
DriverProfile load_profile(const std::string& dir, const std::string& driver);
DriverProfile parse_profile(const nlohmann::json& j, const std::string& source, const std::string& driver);

// The driver a vdev device string names, by its profile ("net_af_packet0,iface=eth1" ->
// "net_af_packet"); "" when none matches (a PCI address).
std::string vdev_driver(const std::string& device);
// The device string with the profile's devargs appended where the string does not set them.
std::string with_devargs(const std::string& device, const DriverProfile& p);
// Bytes of packet buffer a port of this profile needs when it cannot chain buffers.
uint32_t data_room_for(const DriverProfile& p, bool can_scatter);

// What a port will be set up with, decided before the packet buffers exist (their size depends
// on it).
struct PortPlan {
    uint16_t id = 0;
    std::string name;
    std::string driver;
    DriverProfile profile;
    bool scatter = false;    // RTE_ETH_RX_OFFLOAD_SCATTER: large frames in chained buffers
    uint32_t data_room = 0;  // packet buffer bytes this port needs
    uint16_t mtu = 0;        // 0: left as the device has it
    bool inner_rss = false;  // the device hashes on innermost headers
};
PortPlan plan_port(uint16_t id, const std::string& profile_dir, const std::string& what);

struct PortInfo {
    uint16_t id = 0;
    std::string name;
    std::string driver;
    uint16_t queues = 0;
    uint16_t rx_descriptors = 0;
    uint32_t dynfield_ns_per_unit = 0;  // 0: stamp packets from the TSC at RX
    std::string rss;                    // what distributes packets across queues, for the start-up log
    std::string frames;                 // how large frames are received, for the start-up log
    bool inner_rss = false;
    DriverProfile profile;
};

// Configures and starts the planned port with `queues` RX queues (queue q takes mbufs from
// pools[q]). `what` names the port in messages ("ports[0]"). Throws std::runtime_error with the
// reason.
PortInfo start_port(const PortPlan& plan, uint16_t queues, const std::vector<rte_mempool*>& pools,
                    uint16_t rx_desc_override, const std::string& what);

// Offset and flag of the mbuf RX timestamp dynfield, once a PMD registered it; -1/0 otherwise.
struct TimestampField {
    int offset = -1;
    uint64_t flag = 0;
};
TimestampField timestamp_field();

// The 40..52-byte Toeplitz key made of repeated 0x6d5a: symmetric for any src/dst swap.
std::vector<uint8_t> symmetric_rss_key(size_t len);

}  // namespace weir::dpdk
