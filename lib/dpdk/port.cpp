#include "dpdk/port.h"

#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace weir::dpdk {

std::vector<uint8_t> symmetric_rss_key(size_t len) {
    std::vector<uint8_t> k(len);
    for (size_t i = 0; i < len; ++i) k[i] = (i % 2) ? 0x5a : 0x6d;
    return k;
}

DriverProfile load_profile(const std::string& dir, const std::string& driver) {
    DriverProfile p;
    p.driver = driver;
    p.source = "built-in default";
    const std::string file = dir + "/" + driver + ".json";
    std::ifstream in(file);
    if (!in) return p;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        throw std::runtime_error(file + ": " + e.what());
    }
    auto fail = [&](const std::string& field, const std::string& why) {
        throw std::runtime_error(file + ": " + field + ": " + why);
    };
    static const char* known[] = {"driver", "description", "rx_descriptors", "rss", "timestamps", "promiscuous",
                                  "notes"};
    for (auto it = j.begin(); it != j.end(); ++it) {
        bool ok = false;
        for (const char* k : known) ok = ok || it.key() == k;
        if (!ok) fail(it.key(), "unknown key");
    }
    p.source = file;
    if (j.contains("rx_descriptors")) {
        if (!j["rx_descriptors"].is_number_unsigned()) fail("rx_descriptors", "expected an integer");
        p.rx_descriptors = j["rx_descriptors"].get<uint16_t>();
    }
    if (j.contains("rss")) {
        const auto& r = j["rss"];
        if (!r.is_object()) fail("rss", "expected an object");
        if (r.contains("mode")) {
            p.rss_mode = r["mode"].get<std::string>();
            if (p.rss_mode != "symmetric_key" && p.rss_mode != "kernel_fanout" && p.rss_mode != "none")
                fail("rss.mode", "expected symmetric_key, kernel_fanout or none");
        }
        if (r.contains("functions")) p.rss_functions = r["functions"].get<std::vector<std::string>>();
    }
    if (j.contains("timestamps")) {
        p.timestamps = j["timestamps"].get<std::string>();
        if (p.timestamps != "tsc" && p.timestamps != "dynfield_us" && p.timestamps != "dynfield_ns")
            fail("timestamps", "expected tsc, dynfield_us or dynfield_ns");
    }
    if (j.contains("promiscuous")) p.promiscuous = j["promiscuous"].get<bool>();
    return p;
}

namespace {

uint64_t rss_hf_of(const std::vector<std::string>& fns, const std::string& what) {
    uint64_t hf = 0;
    for (const auto& f : fns) {
        if (f == "ipv4") hf |= RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
        else if (f == "ipv6") hf |= RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER;
        else if (f == "tcp") hf |= RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP;
        else if (f == "udp") hf |= RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP;
        else if (f == "sctp") hf |= RTE_ETH_RSS_NONFRAG_IPV4_SCTP | RTE_ETH_RSS_NONFRAG_IPV6_SCTP;
        else throw std::runtime_error(what + ": unknown RSS function \"" + f + "\"");
    }
    return hf;
}

std::string err(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

}  // namespace

PortInfo start_port(uint16_t id, uint16_t queues, const std::vector<rte_mempool*>& pools, uint16_t rx_desc_override,
                    const std::string& profile_dir, const std::string& what) {
    PortInfo info;
    info.id = id;
    char name[RTE_ETH_NAME_MAX_LEN] = {0};
    rte_eth_dev_get_name_by_port(id, name);
    info.name = name;
    rte_eth_dev_info dev{};
    if (int rc = rte_eth_dev_info_get(id, &dev); rc != 0) throw std::runtime_error(what + ": device info: " + err(rc));
    info.driver = dev.driver_name ? dev.driver_name : "unknown";
    info.profile = load_profile(profile_dir, info.driver);
    const DriverProfile& prof = info.profile;

    if (queues > dev.max_rx_queues)
        throw std::runtime_error(what + ": " + std::to_string(queues) + " RX queues needed (one per worker), device " +
                                 info.name + " (" + info.driver + ") has " + std::to_string(dev.max_rx_queues));
    info.queues = queues;

    rte_eth_conf conf{};
    std::vector<uint8_t> key;
    if (queues == 1) {
        info.rss = "single queue";
    } else if (prof.rss_mode == "kernel_fanout") {
        info.rss = "kernel PACKET_FANOUT_HASH (symmetric)";
    } else if (prof.rss_mode == "none" || dev.flow_type_rss_offloads == 0) {
        info.rss = "none: driver " + info.driver +
                   " cannot do symmetric RSS; the two directions of a conversation may reach different workers";
    } else {
        const uint64_t want = rss_hf_of(prof.rss_functions, prof.source);
        const uint64_t hf = want & dev.flow_type_rss_offloads;
        key = symmetric_rss_key(dev.hash_key_size ? dev.hash_key_size : 40);
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key.data();
        conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
        conf.rx_adv_conf.rss_conf.rss_hf = hf;
        info.rss = "symmetric Toeplitz key (0x6d5a x " + std::to_string(key.size() / 2) + ")";
        if (hf != want) info.rss += ", some requested hash types unsupported by the device";
    }
    if (prof.timestamps != "tsc") {
        // The PMD's own stamp (a capture's packet times for net_pcap): its unit is the profile's.
        if (dev.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
        info.dynfield_ns_per_unit = prof.timestamps == "dynfield_us" ? 1000 : 1;
    }
    if (int rc = rte_eth_dev_configure(id, queues, 0, &conf); rc != 0)
        throw std::runtime_error(what + ": configure " + info.name + ": " + err(rc));

    uint16_t nb_rxd = rx_desc_override ? rx_desc_override : prof.rx_descriptors;
    uint16_t nb_txd = 0;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id, &nb_rxd, &nb_txd); rc != 0)
        throw std::runtime_error(what + ": descriptors: " + err(rc));
    info.rx_descriptors = nb_rxd;
    const int socket = rte_eth_dev_socket_id(id);
    for (uint16_t q = 0; q < queues; ++q) {
        rte_eth_rxconf rxconf = dev.default_rxconf;
        rxconf.offloads = conf.rxmode.offloads;
        if (int rc = rte_eth_rx_queue_setup(id, q, nb_rxd, socket < 0 ? SOCKET_ID_ANY : socket, &rxconf, pools[q]);
            rc != 0)
            throw std::runtime_error(what + ": RX queue " + std::to_string(q) + ": " + err(rc));
    }
    if (int rc = rte_eth_dev_start(id); rc != 0) throw std::runtime_error(what + ": start " + info.name + ": " + err(rc));
    if (prof.promiscuous) rte_eth_promiscuous_enable(id);  // not every vdev has it; harmless
    return info;
}

TimestampField timestamp_field() {
    TimestampField t;
    t.offset = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, nullptr);
    const int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, nullptr);
    t.flag = bit >= 0 ? (1ull << bit) : 0;
    if (t.offset < 0 || bit < 0) t = TimestampField{};
    return t;
}

}  // namespace weir::dpdk
