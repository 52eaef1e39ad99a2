// SPDX-License-Identifier: BSD-3-Clause
// Payload inspection on a worker: the first bytes of each direction of a flow go through the
// rules' Hyperscan database in stream mode (a pattern split across segments is found), up to a
// depth; matches put an application and rule tags into the flow's label, and the client's first
// bytes give the TLS server name or HTTP Host. Everything is sized at start: a label per flow-table
// entry (32 B), a bounded pool of stream contexts (two Hyperscan streams each, opened at start
// and reset for reuse) and a bounded pool of names. Nothing allocates or locks per packet; a pool
// that runs dry costs a counted, uninspected flow.
//
// An Engine is what one worker needs of one compiled rule set (its scratch, its streams, its
// match counters). The control thread builds it and hands it over through the worker's mailbox;
// the worker switches at a safe point between bursts and the control thread frees the old one
// once the worker says it has let go of it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/counter.h"
#include "flow/flow_record.h"
#include "inspect/names.h"
#include "inspect/rules.h"

struct hs_scratch;
struct hs_stream;

namespace weir::inspect {

struct InspectConfig {
    uint32_t depth = 4096;         // payload bytes inspected per direction of a flow
    uint32_t packets = 8;          // payload packets inspected per direction at most
    uint32_t streams = 65536;      // flows inspected at the same time, per worker
    uint32_t names = 65536;        // server names (SNI, Host) held for active flows, per worker
    uint32_t capture_packets = 0;  // packets of a flow captured from a capture rule's match on (0: no capture)
    uint32_t carry = 16384;        // findings kept for conversations an active timeout splits into records (power of 2)
};

class Engine {
public:
    // Opens 2 * streams Hyperscan streams and a scratch for `set` (control thread; throws).
    Engine(std::shared_ptr<const Ruleset> set, uint32_t streams);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const Ruleset& ruleset() const noexcept { return *set_; }
    const std::shared_ptr<const Ruleset>& shared() const noexcept { return set_; }
    hs_scratch* scratch() const noexcept { return scratch_; }
    hs_stream* stream(uint32_t ctx, int dir) const noexcept { return streams_[2 * ctx + static_cast<uint32_t>(dir)]; }
    // Matches by rule (index in the rule set), counted by the worker.
    const Counter& matches(size_t rule) const noexcept { return matches_[rule]; }
    Counter* match_counters() noexcept { return matches_.get(); }
    size_t memory_bytes() const noexcept;

private:
    std::shared_ptr<const Ruleset> set_;
    hs_scratch* scratch_ = nullptr;
    std::vector<hs_stream*> streams_;
    std::unique_ptr<Counter[]> matches_;
};

// What inspection knows of a flow, beside its table entry (same index).
struct FlowLabel {
    uint32_t ctx;    // stream context while inspecting, 0 none
    uint32_t name;   // name slot, 0 none
    uint16_t app;    // Registry application handle, 0 none
    uint8_t nrules;  // rules that matched (tagging rules; more than kept counts on)
    uint8_t flags;   // Flag
    uint16_t rules[6];
    uint16_t capture_rule;  // the capture rule that matched first, 0 none
    uint16_t capture_left;  // packets still to capture
    uint32_t inspected;     // payload bytes scanned, both directions
    enum Flag : uint8_t { kDone = 1, kSkipped = 2, kCut = 4, kNameTruncated = 8, kCarried = 16 };
};
static_assert(sizeof(FlowLabel) == 32);

struct alignas(64) InspectStats {
    Counter packets;          // payload packets scanned
    Counter bytes;            // payload bytes scanned
    Counter flows;            // flows given a stream context
    Counter skipped;          // flows not inspected: no stream context free
    Counter finished;         // flows whose inspection ended before the flow did (depth, packets)
    Counter cut;              // flows whose inspection a rules reload ended
    Counter scan_errors;      // Hyperscan returned an error (the flow's inspection ends)
    Counter names[3];         // by NameKind
    Counter names_dropped;    // a name found but no name slot free
    Counter names_truncated;  // names longer than a record holds (kept cut)
    Counter carried;          // findings passed from one record of a conversation to the next (active timeout)
    Counter in_use;           // stream contexts in use (a gauge)
};

class Inspector {
public:
    Inspector(const InspectConfig& cfg, uint32_t table_capacity);  // throws std::bad_alloc
    ~Inspector();
    Inspector(const Inspector&) = delete;
    Inspector& operator=(const Inspector&) = delete;

    // The engine to scan with from now on (nullptr: none). Flows in the middle of inspection are
    // cut (their label keeps what was found so far). The previous engine is no longer used once
    // this returns.
    void attach(Engine* e) noexcept;
    Engine* engine() const noexcept { return engine_; }

    // A new flow in table entry `entry`.
    void start(uint32_t entry) noexcept { labels_[entry] = FlowLabel{}; }

    enum class Result : uint8_t { kMore, kDoneLabeled, kDoneEmpty };
    // One payload packet of the flow in `entry`, direction dir (0: the initiator's). `proto` and
    // the flow's two ports scope the rules. kMore: inspect its next packets too.
    Result scan(uint32_t entry, int dir, uint8_t proto, uint16_t port_a, uint16_t port_b, const uint8_t* p,
                uint32_t n) noexcept;

    // The flow in `entry` ends: its findings into `out`, which the record then points to (flag
    // kInspected), when it has any, and everything it held goes back to the pools. `carry_hash` (the flow key's hash,
    // when an active timeout ended it: the conversation goes on in a new entry) keeps the
    // findings for restore(), until `now_ns` + the age restore() allows.
    void finish(uint32_t entry, flow::FlowRecord& r, flow::Findings& out, uint64_t carry_hash = 0,
                uint64_t now_ns = 0) noexcept;
    // A new flow in `entry`: true when it continues a conversation whose findings were kept (not
    // older than max_age_ns); its label then holds them and it needs no inspection.
    bool restore(uint32_t entry, uint64_t hash, uint64_t now_ns, uint64_t max_age_ns) noexcept;
    // The same without a record (a flow whose record was lost).
    void release(uint32_t entry) noexcept;

    const FlowLabel& label(uint32_t entry) const noexcept { return labels_[entry]; }
    // Selective capture: whether to capture the flow's packet at hand (counts it against the
    // flow's limit), and whether any are left after it.
    bool capture_take(uint32_t entry, bool& more) noexcept {
        FlowLabel& l = labels_[entry];
        if (!l.capture_left) return more = false;
        more = --l.capture_left != 0;
        return true;
    }
    const InspectStats& stats() const noexcept { return stats_; }
    const InspectConfig& config() const noexcept { return cfg_; }
    uint32_t contexts() const noexcept { return cfg_.streams; }
    size_t memory_bytes() const noexcept;

    struct NameSlot {
        uint8_t len;
        uint8_t kind;  // NameKind
        char s[94];
    };
    static_assert(sizeof(NameSlot) == 96);

private:
    struct Context {
        uint32_t entry;
        uint32_t seen[2];
        uint16_t pkts[2];
        uint32_t total;
    };
    struct MatchCtx;
    struct Carry {
        uint64_t hash;  // 0: free
        uint64_t ts_ns;
        uint32_t name;
        uint16_t app;
        uint8_t nrules;
        uint8_t flags;
        uint16_t rules[6];
        uint16_t reserved[2];
    };
    static_assert(sizeof(Carry) == 40);
    static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void* ctx);
    void end_streams(FlowLabel& l, uint8_t proto, uint16_t port_a, uint16_t port_b) noexcept;
    void keep_name(FlowLabel& l, const FoundName& f) noexcept;
    bool has_findings(const FlowLabel& l) const noexcept {
        return l.app || l.nrules || l.name || l.capture_rule || (l.flags & FlowLabel::kSkipped);
    }

    InspectConfig cfg_;
    uint32_t capacity_;
    Engine* engine_ = nullptr;
    std::unique_ptr<FlowLabel[]> labels_;
    std::unique_ptr<Context[]> ctx_;  // index 0 unused
    std::unique_ptr<uint32_t[]> ctx_free_;
    uint32_t ctx_top_ = 0;
    std::unique_ptr<Carry[]> carry_;
    uint32_t carry_mask_ = 0;
    uint32_t carry_live_ = 0;
    std::unique_ptr<NameSlot[]> names_;  // index 0 unused
    std::unique_ptr<uint32_t[]> name_free_;
    uint32_t name_top_ = 0;
    InspectStats stats_;
};

}  // namespace weir::inspect
