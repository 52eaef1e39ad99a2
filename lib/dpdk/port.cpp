// SPDX-License-Identifier: BSD-3-Clause
#include "dpdk/port.h"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
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

DriverProfile parse_profile(const nlohmann::json& j, const std::string& source, const std::string& driver) {
    DriverProfile p;
    p.driver = driver;
    p.source = source;
    auto fail = [&](const std::string& field, const std::string& why) {
        throw std::runtime_error(source + ": " + field + ": " + why);
    };
    if (!j.is_object()) fail("(top level)", "expected an object");
    static const char* known[] = {"driver", "description", "rx_descriptors", "rss",       "timestamps", "promiscuous",
                                  "notes",  "max_frame",   "scatter",        "data_room", "set_mtu",    "devargs"};
    for (auto it = j.begin(); it != j.end(); ++it) {
        bool ok = false;
        for (const char* k : known) ok = ok || it.key() == k;
        if (!ok) fail(it.key(), "unknown key");
    }
    auto uint_field = [&](const char* key, uint32_t lo, uint32_t hi) -> uint32_t {
        const auto& v = j[key];
        if (!v.is_number_unsigned() || v.get<uint64_t>() < lo || v.get<uint64_t>() > hi)
            fail(key, "expected an integer " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + v.dump());
        return v.get<uint32_t>();
    };
    auto bool_field = [&](const char* key) {
        if (!j[key].is_boolean()) fail(key, "expected true or false, got " + j[key].dump());
        return j[key].get<bool>();
    };
    if (j.contains("rx_descriptors")) p.rx_descriptors = static_cast<uint16_t>(uint_field("rx_descriptors", 1, 32768));
    if (j.contains("rss")) {
        const auto& r = j["rss"];
        if (!r.is_object()) fail("rss", "expected an object");
        for (auto it = r.begin(); it != r.end(); ++it)
            if (it.key() != "mode" && it.key() != "functions" && it.key() != "level")
                fail("rss." + it.key(), "unknown key");
        if (r.contains("mode")) {
            if (!r["mode"].is_string()) fail("rss.mode", "expected a string");
            const std::string mode = r["mode"].get<std::string>();
            if (mode == "symmetric_key")
                p.rss_mode = RssMode::kSymmetricKey;
            else if (mode == "kernel_fanout")
                p.rss_mode = RssMode::kKernelFanout;
            else if (mode == "none")
                p.rss_mode = RssMode::kNone;
            else
                fail("rss.mode", "expected symmetric_key, kernel_fanout or none");
        }
        if (r.contains("functions")) {
            if (!r["functions"].is_array()) fail("rss.functions", "expected an array of strings");
            p.rss_functions.clear();
            for (const auto& f : r["functions"]) {
                if (!f.is_string()) fail("rss.functions", "expected an array of strings");
                p.rss_functions.push_back(f.get<std::string>());
            }
        }
        if (r.contains("level")) {
            const std::string level = r["level"].is_string() ? r["level"].get<std::string>() : "";
            if (level != "outermost" && level != "innermost") fail("rss.level", "expected outermost or innermost");
            p.rss_innermost = level == "innermost";
        }
    }
    if (j.contains("timestamps")) {
        const std::string ts = j["timestamps"].is_string() ? j["timestamps"].get<std::string>() : "";
        if (ts == "tsc")
            p.timestamps = Timestamps::kTsc;
        else if (ts == "dynfield_us")
            p.timestamps = Timestamps::kDynfieldUs;
        else if (ts == "dynfield_ns")
            p.timestamps = Timestamps::kDynfieldNs;
        else
            fail("timestamps", "expected tsc, dynfield_us or dynfield_ns");
    }
    if (j.contains("promiscuous")) p.promiscuous = bool_field("promiscuous");
    if (j.contains("max_frame")) p.max_frame = uint_field("max_frame", 1518, 65535);
    if (j.contains("scatter")) p.scatter = bool_field("scatter");
    if (j.contains("data_room")) p.data_room = uint_field("data_room", 1024, 65535 - 128);
    if (j.contains("set_mtu")) p.set_mtu = bool_field("set_mtu");
    if (j.contains("devargs")) {
        const auto& d = j["devargs"];
        if (!d.is_object()) fail("devargs", "expected an object of name: value");
        for (auto it = d.begin(); it != d.end(); ++it) {
            if (!it->is_string() && !it->is_number_unsigned())
                fail("devargs." + it.key(), "expected a string or integer");
            p.devargs.emplace_back(it.key(),
                                   it->is_string() ? it->get<std::string>() : std::to_string(it->get<uint64_t>()));
        }
    }
    return p;
}

DriverProfile load_profile(const std::string& dir, const std::string& driver) {
    if (!dir.empty()) {
        const std::string file = dir + "/" + driver + ".json";
        std::ifstream in(file);
        if (in) {
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(in);
            } catch (const std::exception& e) {
                throw std::runtime_error(file + ": " + e.what());
            }
            return parse_profile(j, file, driver);
        }
    }
    for (const auto& [name, text] : builtin_profiles())
        if (name == driver)
            return parse_profile(nlohmann::json::parse(text), "compiled-in drivers-config/" + name + ".json", driver);
    DriverProfile p;
    p.driver = driver;
    p.source = "generic default (no profile for " + driver + ")";
    return p;
}

std::string vdev_driver(const std::string& device) {
    const std::string name = device.substr(0, device.find(','));
    std::string best;
    for (const auto& [driver, text] : builtin_profiles())
        if (name.rfind(driver, 0) == 0 && driver.size() > best.size()) best = driver;
    return best;
}

std::string with_devargs(const std::string& device, const DriverProfile& p) {
    std::string out = device;
    for (const auto& [k, v] : p.devargs)
        if (("," + device).find("," + k + "=") == std::string::npos) out += "," + k + "=" + v;
    return out;
}

uint32_t data_room_for(const DriverProfile& p, bool can_scatter) {
    if (p.data_room) return p.data_room;
    if (p.scatter && can_scatter) return RTE_MBUF_DEFAULT_DATAROOM;
    return p.max_frame > RTE_MBUF_DEFAULT_DATAROOM ? p.max_frame : RTE_MBUF_DEFAULT_DATAROOM;
}

namespace {

uint64_t rss_hf_of(const std::vector<std::string>& fns, const std::string& what) {
    uint64_t hf = 0;
    for (const auto& f : fns) {
        if (f == "ipv4")
            hf |= RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
        else if (f == "ipv6")
            hf |= RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER;
        else if (f == "tcp")
            hf |= RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP;
        else if (f == "udp")
            hf |= RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP;
        else if (f == "sctp")
            hf |= RTE_ETH_RSS_NONFRAG_IPV4_SCTP | RTE_ETH_RSS_NONFRAG_IPV6_SCTP;
        else
            throw std::runtime_error(what + ": unknown RSS function \"" + f + "\"");
    }
    return hf;
}

std::string err(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

}  // namespace

PortPlan plan_port(uint16_t id, const std::string& profile_dir, const std::string& what) {
    PortPlan plan;
    plan.id = id;
    char name[RTE_ETH_NAME_MAX_LEN] = {0};
    rte_eth_dev_get_name_by_port(id, name);
    plan.name = name;
    rte_eth_dev_info dev{};
    if (int rc = rte_eth_dev_info_get(id, &dev); rc != 0) throw std::runtime_error(what + ": device info: " + err(rc));
    plan.driver = dev.driver_name ? dev.driver_name : "unknown";
    plan.profile = load_profile(profile_dir, plan.driver);
    const DriverProfile& p = plan.profile;
    plan.scatter = p.scatter && (dev.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER);
    plan.data_room = data_room_for(p, plan.scatter);
    if (p.set_mtu) {
        // Room for two VLAN tags besides the Ethernet header: a QinQ jumbo frame is still whole.
        uint32_t mtu = p.max_frame - RTE_ETHER_HDR_LEN - 8;
        if (mtu > dev.max_mtu) mtu = dev.max_mtu;
        if (mtu >= dev.min_mtu && mtu > RTE_ETHER_MTU) plan.mtu = static_cast<uint16_t>(mtu);
    }
    plan.inner_rss = p.rss_innermost && (dev.flow_type_rss_offloads & RTE_ETH_RSS_LEVEL_INNERMOST);
    return plan;
}

PortInfo start_port(const PortPlan& plan, uint16_t queues, const std::vector<rte_mempool*>& pools,
                    uint16_t rx_desc_override, const std::string& what) {
    PortInfo info;
    const uint16_t id = plan.id;
    info.id = id;
    info.name = plan.name;
    info.driver = plan.driver;
    info.profile = plan.profile;
    const DriverProfile& prof = info.profile;
    rte_eth_dev_info dev{};
    if (int rc = rte_eth_dev_info_get(id, &dev); rc != 0) throw std::runtime_error(what + ": device info: " + err(rc));

    if (queues > dev.max_rx_queues)
        throw std::runtime_error(what + ": " + std::to_string(queues) + " RX queues needed (one per worker), device " +
                                 info.name + " (" + info.driver + ") has " + std::to_string(dev.max_rx_queues));
    info.queues = queues;

    rte_eth_conf conf{};
    std::vector<uint8_t> key;
    if (queues == 1) {
        info.rss = "single queue";
    } else if (prof.rss_mode == RssMode::kKernelFanout) {
        info.rss = "kernel PACKET_FANOUT_HASH (symmetric)";
    } else if (prof.rss_mode == RssMode::kNone || dev.flow_type_rss_offloads == 0) {
        info.rss = "none: driver " + info.driver +
            " cannot do symmetric RSS; the two directions of a conversation may reach different workers";
    } else {
        const uint64_t want = rss_hf_of(prof.rss_functions, prof.source);
        uint64_t hf = want & dev.flow_type_rss_offloads;
        key = symmetric_rss_key(dev.hash_key_size ? dev.hash_key_size : 40);
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key.data();
        conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
        info.rss = "symmetric Toeplitz key (0x6d5a x " + std::to_string(key.size() / 2) + ")";
        if (hf != want) info.rss += ", some requested hash types unsupported by the device";
        if (plan.inner_rss) {
            hf |= RTE_ETH_RSS_LEVEL_INNERMOST;
            info.inner_rss = true;
            info.rss += " on the innermost headers";
        } else if (prof.rss_innermost) {
            info.rss += "; the device offers no innermost-header RSS, so tunneled packets are passed between workers";
        }
        conf.rx_adv_conf.rss_conf.rss_hf = hf;
    }
    if (prof.timestamps != Timestamps::kTsc) {
        // The PMD's own stamp (a capture's packet times for net_pcap): its unit is the profile's.
        if (dev.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
        info.dynfield_ns_per_unit = prof.timestamps == Timestamps::kDynfieldUs ? 1000 : 1;
    }
    if (plan.scatter) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    conf.rxmode.mtu = plan.mtu;
    if (plan.mtu)
        info.frames = "MTU " + std::to_string(plan.mtu) +
            (plan.scatter ? ", chained buffers" : ", " + std::to_string(plan.data_room) + "-byte buffers");
    else if (!prof.set_mtu)
        info.frames = "frames up to " + std::to_string(prof.max_frame) + " B" +
            (prof.devargs.empty() ? "" : " (driver arguments from the profile)");
    else
        info.frames = "standard MTU (the device offers no more)";
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
    if (int rc = rte_eth_dev_start(id); rc != 0)
        throw std::runtime_error(what + ": start " + info.name + ": " + err(rc));
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
