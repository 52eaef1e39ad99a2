// SPDX-License-Identifier: BSD-3-Clause
#include "zones/zones.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>

namespace weir::zones {

namespace {

void mask(uint8_t* a, unsigned len, unsigned bytes) {
    for (unsigned i = 0; i < bytes; ++i) {
        const unsigned bits = len > i * 8 ? std::min(8u, len - i * 8) : 0;
        a[i] &= static_cast<uint8_t>(bits ? 0xFF << (8 - bits) : 0);
    }
}

const char* proto_name(uint8_t p) {
    switch (p) {
        case 1: return "icmp";
        case 6: return "tcp";
        case 17: return "udp";
        case 58: return "icmpv6";
        case 132: return "sctp";
        case 33: return "dccp";
        case 136: return "udplite";
        case 47: return "gre";
        case 50: return "esp";
        default: return nullptr;
    }
}

}  // namespace

Prefix parse_prefix(const std::string& text) {
    Prefix p;
    const size_t slash = text.find('/');
    const std::string addr = text.substr(0, slash);
    if (inet_pton(AF_INET, addr.c_str(), p.addr) == 1) {
        p.version = 4;
        p.len = 32;
    } else if (inet_pton(AF_INET6, addr.c_str(), p.addr) == 1) {
        p.version = 6;
        p.len = 128;
    } else {
        throw std::invalid_argument("expected an IPv4 or IPv6 prefix such as 10.0.0.0/8 or 2001:db8::/32, got \"" +
                                    text + "\"");
    }
    if (slash != std::string::npos) {
        const std::string len = text.substr(slash + 1);
        const unsigned max = p.version == 4 ? 32 : 128;
        if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit) ||
            static_cast<unsigned>(std::stoi(len)) > max)
            throw std::invalid_argument("prefix length must be 0.." + std::to_string(max) + ", got \"" + text + "\"");
        p.len = static_cast<uint8_t>(std::stoi(len));
    }
    Prefix m = p;
    mask(m.addr, m.len, 16);
    if (std::memcmp(m.addr, p.addr, 16) != 0)
        throw std::invalid_argument("\"" + text + "\" has bits set past its length (did you mean " + prefix_text(m) +
                                    "?)");
    return p;
}

std::string prefix_text(const Prefix& p) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(p.version == 4 ? AF_INET : AF_INET6, p.addr, buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(p.len);
}

size_t ZoneMap::KeyHash::operator()(const Key& k) const noexcept {
    uint64_t h = k.hi * 0x9E3779B97F4A7C15ull ^ (k.lo + 0x632BE59BD9B4E019ull + (uint64_t{k.len} << 8 | k.version));
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return static_cast<size_t>(h ^ (h >> 32));
}

ZoneMap::Key ZoneMap::key(const uint8_t* addr, uint8_t version, uint8_t len) noexcept {
    uint8_t a[16] = {};
    std::memcpy(a, addr, version == 4 ? 4 : 16);
    mask(a, len, version == 4 ? 4 : 16);
    Key k{};
    std::memcpy(&k.hi, a, 8);
    std::memcpy(&k.lo, a + 8, 8);
    k.len = len;
    k.version = version;
    return k;
}

ZoneMap::ZoneMap(const std::vector<ZoneSpec>& zones) {
    names_.push_back("other");
    if (zones.size() >= 65535) throw std::invalid_argument("at most 65534 zones");
    for (const ZoneSpec& z : zones) {
        if (z.name.empty() || z.name == "other" || z.name == "any")
            throw std::invalid_argument("zone name \"" + z.name + "\" is reserved or empty");
        if (find(z.name) >= 0) throw std::invalid_argument("zone \"" + z.name + "\" is defined twice");
        const auto idx = static_cast<uint16_t>(names_.size());
        names_.push_back(z.name);
        for (const Prefix& p : z.prefixes) {
            auto [it, fresh] = map_.try_emplace(key(p.addr, p.version, p.len), idx);
            if (!fresh && it->second != idx)
                throw std::invalid_argument(prefix_text(p) + " is in zone \"" + names_[it->second] + "\" and in \"" +
                                            z.name + "\"");
            auto& lens = lens_[p.version == 4 ? 0 : 1];
            if (std::find(lens.begin(), lens.end(), p.len) == lens.end()) lens.push_back(p.len);
        }
    }
    for (auto& lens : lens_) std::sort(lens.begin(), lens.end(), std::greater<>());
    // Every prefix's first address and the address after its last cut the space into pieces
    // that lie wholly inside or outside each prefix: a piece's zone is its first address's.
    std::vector<uint32_t> cuts4 = {0};
    std::vector<unsigned __int128> cuts6 = {0};
    for (const ZoneSpec& z : zones)
        for (const Prefix& p : z.prefixes) {
            if (p.version == 4) {
                const uint32_t a =
                    uint32_t{p.addr[0]} << 24 | uint32_t{p.addr[1]} << 16 | uint32_t{p.addr[2]} << 8 | p.addr[3];
                cuts4.push_back(a);
                const uint64_t end = uint64_t{a} + (uint64_t{1} << (32 - p.len));
                if (end <= UINT32_MAX) cuts4.push_back(static_cast<uint32_t>(end));
            } else {
                unsigned __int128 a = 0;
                for (int i = 0; i < 16; ++i) a = a << 8 | p.addr[i];
                cuts6.push_back(a);
                if (p.len > 0) {
                    const unsigned __int128 size = static_cast<unsigned __int128>(1) << (128 - p.len);
                    if (a + size != 0) cuts6.push_back(a + size);  // wraps only at the end of the space
                }
            }
        }
    auto build = [&](auto& cuts, auto& starts, std::vector<uint16_t>& zs, uint8_t version) {
        std::sort(cuts.begin(), cuts.end());
        cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
        for (auto c : cuts) {
            uint8_t a[16] = {};
            auto v = c;
            for (int i = version == 4 ? 3 : 15; i >= 0; --i, v >>= 8) a[i] = static_cast<uint8_t>(v & 0xFF);
            const uint16_t z = lookup_prefixes(a, version);
            if (!zs.empty() && zs.back() == z) continue;  // the same zone goes on
            starts.push_back(c);
            zs.push_back(z);
        }
    };
    build(cuts4, v4_start_, v4_zone_, 4);
    build(cuts6, v6_start_, v6_zone_, 6);
}

uint16_t ZoneMap::lookup_prefixes(const uint8_t* addr, uint8_t version) const noexcept {
    for (uint8_t len : lens_[version == 4 ? 0 : 1]) {
        auto it = map_.find(key(addr, version, len));
        if (it != map_.end()) return it->second;
    }
    return 0;
}

uint16_t ZoneMap::lookup(const uint8_t* addr, uint8_t version) const noexcept {
    if (version == 4) {
        const uint32_t a = uint32_t{addr[0]} << 24 | uint32_t{addr[1]} << 16 | uint32_t{addr[2]} << 8 | addr[3];
        const auto it = std::upper_bound(v4_start_.begin(), v4_start_.end(), a);
        return v4_zone_[static_cast<size_t>(it - v4_start_.begin()) - 1];  // v4_start_[0] == 0
    }
    unsigned __int128 a = 0;
    for (int i = 0; i < 16; ++i) a = a << 8 | addr[i];
    const auto it = std::upper_bound(v6_start_.begin(), v6_start_.end(), a);
    return v6_zone_[static_cast<size_t>(it - v6_start_.begin()) - 1];
}

int ZoneMap::find(const std::string& name) const {
    for (size_t i = 0; i < names_.size(); ++i)
        if (names_[i] == name) return static_cast<int>(i);
    return -1;
}

uint16_t service_port(const packet::Tuple& t) noexcept {
    if (t.proto == 1 || t.proto == 58) return static_cast<uint16_t>(t.dport >> 8);
    return t.dport;
}

Matrix::Matrix(const std::vector<ZoneSpec>& zones, const PolicySpec& policy, size_t max_cells)
    : zones_(zones), policy_on_(policy.on), max_cells_(max_cells) {
    for (const AllowRule& a : policy.allow) {
        Rule r{-1, -1, a.proto, a.ports};
        if (a.from != "any" && (r.from = zones_.find(a.from)) < 0)
            throw std::invalid_argument("no zone named \"" + a.from + "\"");
        if (a.to != "any" && (r.to = zones_.find(a.to)) < 0)
            throw std::invalid_argument("no zone named \"" + a.to + "\"");
        rules_.push_back(std::move(r));
    }
}

bool Matrix::allows(uint16_t from, uint16_t to, uint8_t proto, uint16_t port) const noexcept {
    if (!policy_on_) return true;
    for (const Rule& r : rules_) {
        if (r.from >= 0 && r.from != from) continue;
        if (r.to >= 0 && r.to != to) continue;
        if (r.proto >= 0 && r.proto != proto) continue;
        if (r.ports.empty()) return true;
        for (const PortRange& p : r.ports)
            if (port >= p.lo && port <= p.hi) return true;
    }
    return false;
}

void Matrix::count(const flow::FlowRecord* recs, unsigned n, std::vector<Violation>& out) {
    for (unsigned i = 0; i < n; ++i) {
        const flow::FlowRecord& r = recs[i];
        if (r.flags & flow::FlowRecord::kOuterCopy) {
            ++stats_.outer_copies;
            continue;
        }
        const packet::Tuple& t = r.tuple;
        const uint16_t from = zones_.lookup(t.src, t.ip_version), to = zones_.lookup(t.dst, t.ip_version);
        const uint16_t port = service_port(t);
        const uint64_t k = uint64_t{from} << 40 | uint64_t{to} << 24 | uint64_t{t.proto} << 16 | port;
        auto it = cells_.find(k);
        if (it == cells_.end()) {
            if (cells_.size() >= max_cells_) {
                ++stats_.overflow_records;
                // Still judged: the policy does not depend on there being room to count.
                if (!allows(from, to, t.proto, port)) {
                    ++stats_.violations;
                    out.push_back({t, zones_.name(from), zones_.name(to), port, r.fwd.first_ns,
                                   std::max(r.fwd.last_ns, r.rev.last_ns), r.packets(), r.fwd.octets + r.rev.octets});
                }
                continue;
            }
            it = cells_.emplace(k, Cell{}).first;
            it->second.allowed = allows(from, to, t.proto, port);
        }
        Cell& c = it->second;
        ++stats_.records;
        ++c.flows;
        c.packets += r.fwd.packets;
        c.bytes += r.fwd.octets;
        c.rev_packets += r.rev.packets;
        c.rev_bytes += r.rev.octets;
        const uint64_t last = std::max(r.fwd.last_ns, r.rev.packets ? r.rev.last_ns : 0);
        c.first_ns = std::min(c.first_ns, r.fwd.first_ns);
        c.last_ns = std::max(c.last_ns, last);
        if (!c.allowed) {
            ++stats_.violations;
            out.push_back({t, zones_.name(from), zones_.name(to), port, r.fwd.first_ns, last, r.packets(),
                           r.fwd.octets + r.rev.octets});
        }
    }
}

std::vector<PairTotals> Matrix::pair_totals() const {
    std::map<uint32_t, PairTotals> m;
    for (const auto& [k, c] : cells_) {
        const auto from = static_cast<uint16_t>(k >> 40), to = static_cast<uint16_t>(k >> 24);
        PairTotals& p = m.try_emplace(uint32_t{from} << 16 | to, PairTotals{from, to, 0, 0, 0}).first->second;
        p.flows += c.flows;
        p.packets += c.packets + c.rev_packets;
        p.bytes += c.bytes + c.rev_bytes;
    }
    std::vector<PairTotals> v;
    v.reserve(m.size());
    for (const auto& [k, p] : m) v.push_back(p);
    return v;
}

nlohmann::json Matrix::to_json(size_t n) const {
    std::vector<std::pair<uint64_t, const Cell*>> v;
    v.reserve(cells_.size());
    for (const auto& [k, c] : cells_) v.emplace_back(k, &c);
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
        const uint64_t x = a.second->bytes + a.second->rev_bytes, y = b.second->bytes + b.second->rev_bytes;
        return x != y ? x > y : a.first < b.first;
    });
    if (v.size() > n) v.resize(n);
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& [k, c] : v) {
        const auto proto = static_cast<uint8_t>(k >> 16);
        const char* pn = proto_name(proto);
        nlohmann::json j = {{"from", zones_.name(static_cast<uint16_t>(k >> 40))},
                            {"to", zones_.name(static_cast<uint16_t>(k >> 24))},
                            {"protocol", pn ? nlohmann::json(pn) : nlohmann::json(proto)},
                            {"flows", c->flows},
                            {"packets", c->packets + c->rev_packets},
                            {"bytes", c->bytes + c->rev_bytes},
                            {"client_packets", c->packets},
                            {"client_bytes", c->bytes},
                            {"server_packets", c->rev_packets},
                            {"server_bytes", c->rev_bytes},
                            {"first_ns", c->first_ns},
                            {"last_ns", c->last_ns}};
        if (proto == 1 || proto == 58)
            j["icmp_type"] = static_cast<uint16_t>(k);
        else
            j["port"] = static_cast<uint16_t>(k);
        if (policy_on_) j["allowed"] = c->allowed;
        cells.push_back(std::move(j));
    }
    nlohmann::json zones = nlohmann::json::array();
    for (size_t i = 0; i < zones_.size(); ++i) zones.push_back(zones_.name(static_cast<uint16_t>(i)));
    return {{"zones", zones},
            {"policy", policy_on_},
            {"cells", cells_.size()},
            {"max_cells", max_cells_},
            {"records", stats_.records},
            {"overflow_records", stats_.overflow_records},
            {"violations", stats_.violations},
            {"matrix", cells}};
}

}  // namespace weir::zones
