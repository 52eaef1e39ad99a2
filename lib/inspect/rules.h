// SPDX-License-Identifier: BSD-3-Clause
// Payload rules: the JSON rules file, its validation, and its compilation into one Hyperscan
// stream-mode database that every worker scans with a scratch of its own. Control plane only:
// parsing and compiling allocate and throw; the compiled Ruleset is read-only afterwards.
//
// What records carry of a match are small handles (an application, a rule), not strings: the
// Registry turns them back into names on the control side. Handles are never reused, so a record
// made before a reload still names what matched it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct hs_database;

namespace weir::inspect {

// One rule as the file gives it.
struct RuleSpec {
    uint32_t id = 0;
    std::string name;
    std::string pattern;          // Hyperscan's regular expression dialect (PCRE subset)
    unsigned flags = 0;           // HS_FLAG_* from "flags"
    uint8_t proto = 0;            // 0: TCP and UDP; 6 or 17
    std::vector<uint16_t> ports;  // either end's port; empty: any
    uint8_t direction = 3;        // 1 initiator -> responder, 2 responder -> initiator, 3 both
    uint64_t offset = 0;          // the match ends at least this far into the direction's bytes
    uint64_t depth = 0;           // ... and within its first `depth` bytes (0: the inspection depth)
    std::string tag;              // label put into the record of a matching flow ("" none)
    std::string app;              // application the match names ("" none)
    bool capture = false;         // the flow's packets from the match on go to the capture files
    bool operator==(const RuleSpec&) const = default;
};

// What a rule's match is in a record: the rule's identity at the time it matched.
struct RuleInfo {
    uint32_t id;
    std::string name, tag, app;
};

// Names behind the handles records carry. Append-only and bounded (65535 applications, 65535
// rules): a handle stays valid for the life of the process. Written on reload, read by exporters;
// lookups take a lock only for the deque's sake and are not on a worker.
class Registry {
public:
    static Registry& instance();
    // The handle of an application name / rule (the same name or identical rule: the same
    // handle). Throws std::length_error when the registry is full.
    uint16_t app(const std::string& name);
    uint16_t rule(const RuleInfo& r);
    // "" / nullptr for handle 0 and unknown handles.
    std::string app_name(uint16_t h) const;
    const RuleInfo* rule_info(uint16_t h) const;
    size_t apps() const;

private:
    mutable std::mutex mu_;
    std::deque<std::string> apps_;  // handle h at h - 1
    std::deque<RuleInfo> rules_;
};

class RuleError : public std::runtime_error {
public:
    explicit RuleError(const std::string& what) : std::runtime_error(what) {}
};

// A rule as workers apply it (indexed by the Hyperscan expression id).
struct CompiledRule {
    uint16_t handle;            // Registry rule handle
    uint16_t app;               // Registry application handle, 0 none
    uint8_t proto;              // 0 any of TCP/UDP
    uint8_t direction;          // bit 0: initiator's bytes, bit 1: responder's
    bool tag;                   // the flow's record names the rule
    bool capture;               // the flow's packets from the match on are captured
    uint8_t nports;             // 0: any port; else ports[0..nports)
    uint16_t ports[8];          // ports of either end (more than 8 are kept in port_bits)
    const uint64_t* port_bits;  // 65536-bit set when more than 8 ports, else nullptr
    bool port_ok(uint16_t p) const noexcept {
        if (port_bits) return port_bits[p >> 6] >> (p & 63) & 1;
        if (nports == 0) return true;
        for (uint8_t i = 0; i < nports; ++i)
            if (ports[i] == p) return true;
        return false;
    }
};

// One compiled rule set: shared read-only by all workers.
class Ruleset {
public:
    ~Ruleset();
    Ruleset(const Ruleset&) = delete;
    Ruleset& operator=(const Ruleset&) = delete;

    hs_database* database() const noexcept { return db_; }
    const std::vector<CompiledRule>& rules() const noexcept { return rules_; }
    const std::vector<RuleSpec>& specs() const noexcept { return specs_; }
    size_t stream_bytes() const noexcept { return stream_bytes_; }
    size_t database_bytes() const noexcept { return db_bytes_; }
    const std::string& source() const noexcept { return source_; }

    // Compiles rules (ids unique, at least one); `depth` bounds every rule without a depth of
    // its own. Throws RuleError naming the rule id and Hyperscan's reason.
    static std::shared_ptr<const Ruleset> compile(std::vector<RuleSpec> rules, uint32_t depth, std::string source);

private:
    Ruleset() = default;
    hs_database* db_ = nullptr;
    std::vector<CompiledRule> rules_;
    std::vector<RuleSpec> specs_;
    std::vector<std::unique_ptr<uint64_t[]>> port_sets_;
    size_t stream_bytes_ = 0;
    size_t db_bytes_ = 0;
    std::string source_;
};

// Reads a rules file: {"rules": [{...}, ...]}. Throws RuleError naming the file, the rule's index
// and id, the field and the reason (all problems at once).
std::vector<RuleSpec> parse_rules(const nlohmann::json& j, const std::string& where);
std::vector<RuleSpec> load_rules_file(const std::string& path);

// Which Hyperscan weir was built with ("hyperscan 5.4.0 ..." or Vectorscan's string).
std::string engine_version();

}  // namespace weir::inspect
