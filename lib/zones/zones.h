// SPDX-License-Identifier: BSD-3-Clause
// The flow matrix: zones are named lists of address prefixes; every conversation that ends is
// counted in the cell of its client's zone, its server's zone and its service (protocol and the
// server's port, or the ICMP type), and, when a policy lists the services allowed from zone to
// zone, a conversation outside it is a violation. Control thread only: it reads the records the
// workers hand over, never a packet, so the data plane pays nothing for it. No DPDK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "flow/flow_record.h"

namespace weir::zones {

struct Prefix {
    uint8_t addr[16] = {};  // IPv4 in the first 4 bytes; bits past `len` are zero
    uint8_t version = 4;
    uint8_t len = 32;
    bool operator==(const Prefix&) const = default;
};
// "10.0.0.0/8", "2001:db8::/32", or an address alone (/32, /128). Host bits set are an error
// (they usually mean a typo). Throws std::invalid_argument with the reason.
Prefix parse_prefix(const std::string& text);
std::string prefix_text(const Prefix& p);

struct ZoneSpec {
    std::string name;
    std::vector<Prefix> prefixes;
    bool operator==(const ZoneSpec&) const = default;
};

struct PortRange {
    uint16_t lo = 0, hi = 65535;
    bool operator==(const PortRange&) const = default;
};

// One allowed service: from a zone (or "any") to a zone (or "any"), a protocol (-1: any) and
// ports of the server (ICMP: types; empty: any).
struct AllowRule {
    std::string from = "any", to = "any";
    int proto = -1;
    std::vector<PortRange> ports;
    bool operator==(const AllowRule&) const = default;
};

struct PolicySpec {
    bool on = false;  // with a policy, whatever it does not allow is a violation
    std::vector<AllowRule> allow;
    bool operator==(const PolicySpec&) const = default;
};

// The zone an address is in: the longest prefix that holds it. Zone 0 is "other": addresses in
// no zone.
class ZoneMap {
public:
    // Throws std::invalid_argument: a name used twice, "other" or "any" as a name, one prefix in
    // two zones.
    explicit ZoneMap(const std::vector<ZoneSpec>& zones);
    uint16_t lookup(const uint8_t* addr, uint8_t version) const noexcept;
    const std::string& name(uint16_t z) const { return names_[z]; }
    // The zone of that name, or -1.
    int find(const std::string& name) const;
    size_t size() const noexcept { return names_.size(); }

private:
    struct Key {
        uint64_t hi, lo;
        uint8_t len, version;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        size_t operator()(const Key& k) const noexcept;
    };
    static Key key(const uint8_t* addr, uint8_t version, uint8_t len) noexcept;
    // Longest match through the prefixes themselves (at start, to build the ranges below).
    uint16_t lookup_prefixes(const uint8_t* addr, uint8_t version) const noexcept;
    std::vector<std::string> names_;
    std::vector<uint8_t> lens_[2];  // prefix lengths in use per family (IPv4, IPv6), longest first
    std::unordered_map<Key, uint16_t, KeyHash> map_;
    // The address space cut where any prefix starts or ends: the zone of each piece, found by a
    // binary search (about 12 steps for 4,000 prefixes).
    std::vector<uint32_t> v4_start_;
    std::vector<uint16_t> v4_zone_;
    std::vector<unsigned __int128> v6_start_;
    std::vector<uint16_t> v6_zone_;
};

// The service of a conversation: protocol and the server's port (the initiator's destination
// port); ICMP and ICMPv6: the type; other protocols: 0.
uint16_t service_port(const packet::Tuple& t) noexcept;

struct Cell {
    uint64_t flows = 0;                       // records (a conversation longer than the active timeout is several)
    uint64_t packets = 0, bytes = 0;          // client to server
    uint64_t rev_packets = 0, rev_bytes = 0;  // server to client
    uint64_t first_ns = UINT64_MAX, last_ns = 0;
    bool allowed = true;  // by the policy (always, without one)
};

// A conversation the policy does not allow.
struct Violation {
    packet::Tuple tuple;  // the client's direction
    std::string from, to;
    uint16_t port = 0;
    uint64_t first_ns = 0, last_ns = 0, packets = 0, bytes = 0;
};

struct MatrixStats {
    uint64_t records = 0;           // counted in a cell
    uint64_t overflow_records = 0;  // not counted: every cell taken
    uint64_t violations = 0;        // records outside the policy
    uint64_t outer_copies = 0;      // tunnels' own records (mode both): not counted, their packets are in tenant flows
};

struct PairTotals {
    uint16_t from, to;
    uint64_t flows, packets, bytes;  // both directions
};

class Matrix {
public:
    // Throws std::invalid_argument when a policy rule names a zone that does not exist.
    Matrix(const std::vector<ZoneSpec>& zones, const PolicySpec& policy, size_t max_cells);
    // Counts `n` records; appends the conversations the policy does not allow to `out`.
    void count(const flow::FlowRecord* r, unsigned n, std::vector<Violation>& out);
    // The cells, heaviest by bytes (both directions) first, at most `n`.
    nlohmann::json to_json(size_t n) const;
    // The cells summed per zone pair, in zone order.
    std::vector<PairTotals> pair_totals() const;
    const MatrixStats& stats() const noexcept { return stats_; }
    size_t cells() const noexcept { return cells_.size(); }
    size_t max_cells() const noexcept { return max_cells_; }
    bool policy() const noexcept { return policy_on_; }
    const ZoneMap& zones() const noexcept { return zones_; }

private:
    struct Rule {
        int from, to;  // zone index, -1 any
        int proto;
        std::vector<PortRange> ports;
    };
    bool allows(uint16_t from, uint16_t to, uint8_t proto, uint16_t port) const noexcept;
    ZoneMap zones_;
    bool policy_on_;
    std::vector<Rule> rules_;
    size_t max_cells_;
    std::unordered_map<uint64_t, Cell> cells_;  // key: from << 40 | to << 24 | proto << 16 | port
    MatrixStats stats_;
};

}  // namespace weir::zones
