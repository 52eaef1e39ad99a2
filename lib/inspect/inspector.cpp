// SPDX-License-Identifier: BSD-3-Clause
#include "inspect/inspector.h"

#include <hs/hs.h>

#include <cstring>
#include <new>
#include <stdexcept>

namespace weir::inspect {

Engine::Engine(std::shared_ptr<const Ruleset> set, uint32_t streams) : set_(std::move(set)) {
    if (hs_alloc_scratch(set_->database(), &scratch_) != HS_SUCCESS)
        throw std::runtime_error("Hyperscan: cannot allocate a scratch for the rules");
    matches_ = std::make_unique<Counter[]>(set_->rules().size());
    streams_.assign(2 * (static_cast<size_t>(streams) + 1), nullptr);
    for (size_t i = 2; i < streams_.size(); ++i) {  // context 0 is never used
        if (hs_open_stream(set_->database(), 0, &streams_[i]) != HS_SUCCESS) {
            this->~Engine();
            throw std::runtime_error("Hyperscan: cannot open " + std::to_string(streams_.size()) + " streams of " +
                                     std::to_string(set_->stream_bytes()) + " bytes");
        }
    }
}

Engine::~Engine() {
    for (hs_stream*& s : streams_)
        if (s) {
            hs_close_stream(s, nullptr, nullptr, nullptr);
            s = nullptr;
        }
    if (scratch_) hs_free_scratch(scratch_);
    scratch_ = nullptr;
}

size_t Engine::memory_bytes() const noexcept {
    size_t scratch = 0;
    if (scratch_) hs_scratch_size(scratch_, &scratch);
    return scratch + streams_.size() * set_->stream_bytes() + set_->rules().size() * sizeof(Counter);
}

Inspector::Inspector(const InspectConfig& cfg, uint32_t table_capacity)
    : cfg_(cfg),
      capacity_(table_capacity),
      labels_(new FlowLabel[table_capacity]()),
      ctx_(new Context[cfg.streams + 1]()),
      ctx_free_(new uint32_t[cfg.streams]),
      names_(new NameSlot[cfg.names + 1]),
      name_free_(new uint32_t[cfg.names]) {
    for (uint32_t i = 0; i < cfg.streams; ++i) ctx_free_[ctx_top_++] = cfg.streams - i;
    for (uint32_t i = 0; i < cfg.names; ++i) name_free_[name_top_++] = cfg.names - i;
    if (cfg.carry) {
        uint32_t n = 1;
        while (n < cfg.carry) n <<= 1;
        carry_.reset(new Carry[n]());
        carry_mask_ = n - 1;
    }
}

Inspector::~Inspector() = default;

size_t Inspector::memory_bytes() const noexcept {
    return static_cast<size_t>(capacity_) * sizeof(FlowLabel) + (cfg_.streams + 1) * (sizeof(Context) + 4) +
        (cfg_.names + 1) * (sizeof(NameSlot) + 4) + (carry_ ? (carry_mask_ + 1) * sizeof(Carry) : 0);
}

void Inspector::attach(Engine* e) noexcept {
    // Contexts refer to the old engine's streams: every flow being inspected stops here.
    for (uint32_t i = 1; i <= cfg_.streams; ++i) {
        Context& c = ctx_[i];
        if (c.entry == UINT32_MAX || c.entry >= capacity_) continue;
        FlowLabel& l = labels_[c.entry];
        if (l.ctx != i) continue;
        if (engine_) {
            hs_reset_stream(engine_->stream(i, 0), 0, nullptr, nullptr, nullptr);
            hs_reset_stream(engine_->stream(i, 1), 0, nullptr, nullptr, nullptr);
        }
        l.ctx = 0;
        l.flags |= FlowLabel::kCut | FlowLabel::kDone;
        c.entry = UINT32_MAX;
        ctx_free_[ctx_top_++] = i;
        stats_.cut.add();
        stats_.in_use.sub();
    }
    engine_ = e;
}

struct Inspector::MatchCtx {
    Inspector* self;
    FlowLabel* label;
    const CompiledRule* rules;
    Counter* counters;
    uint8_t dir_bit;
    uint8_t proto;
    uint16_t port_a, port_b;
};

int Inspector::on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* p) {
    auto& m = *static_cast<MatchCtx*>(p);
    const CompiledRule& r = m.rules[id];
    if (!(r.direction & m.dir_bit)) return 0;
    if (r.proto && r.proto != m.proto) return 0;
    if (!r.port_ok(m.port_a) && !r.port_ok(m.port_b)) return 0;
    m.counters[id].add();
    FlowLabel& l = *m.label;
    if (r.app && !l.app) l.app = r.app;
    if (r.capture && !l.capture_rule && m.self->cfg_.capture_packets) {
        l.capture_rule = r.handle;
        l.capture_left =
            static_cast<uint16_t>(m.self->cfg_.capture_packets < 65535 ? m.self->cfg_.capture_packets : 65535);
    }
    if (r.tag) {
        const uint8_t kept = l.nrules < 6 ? l.nrules : 6;
        for (uint8_t i = 0; i < kept; ++i)
            if (l.rules[i] == r.handle) return 0;  // the other direction matched it already
        if (kept < 6) l.rules[kept] = r.handle;
        if (l.nrules < 255) ++l.nrules;
    }
    return 0;
}

void Inspector::keep_name(FlowLabel& l, const FoundName& f) noexcept {
    stats_.names[static_cast<size_t>(f.kind)].add();
    if (name_top_ == 0) {
        stats_.names_dropped.add();
        return;
    }
    const uint32_t slot = name_free_[--name_top_];
    NameSlot& s = names_[slot];
    uint32_t n = f.len;
    if (n > sizeof(s.s)) {
        n = sizeof(s.s);
        l.flags |= FlowLabel::kNameTruncated;
        stats_.names_truncated.add();
    }
    std::memcpy(s.s, f.data, n);
    s.len = static_cast<uint8_t>(n);
    s.kind = static_cast<uint8_t>(f.kind);
    l.name = slot;
}

void Inspector::end_streams(FlowLabel& l, uint8_t proto, uint16_t port_a, uint16_t port_b) noexcept {
    const uint32_t i = l.ctx;
    // End of data: patterns anchored at the end ($) get their say.
    for (int d = 0; d < 2; ++d) {
        MatchCtx m{this,
                   &l,
                   engine_->ruleset().rules().data(),
                   engine_->match_counters(),
                   static_cast<uint8_t>(1 << d),
                   proto,
                   port_a,
                   port_b};
        hs_reset_stream(engine_->stream(i, d), 0, engine_->scratch(), on_match, &m);
    }
    ctx_[i].entry = UINT32_MAX;
    ctx_free_[ctx_top_++] = i;
    l.ctx = 0;
    stats_.in_use.sub();
}

Inspector::Result Inspector::scan(uint32_t entry, int dir, uint8_t proto, uint16_t port_a, uint16_t port_b,
                                  const uint8_t* p, uint32_t n) noexcept {
    FlowLabel& l = labels_[entry];
    if ((l.flags & FlowLabel::kDone) || !engine_) return has_findings(l) ? Result::kDoneLabeled : Result::kDoneEmpty;
    if (l.ctx == 0) {
        if (ctx_top_ == 0) {
            stats_.skipped.add();
            l.flags |= FlowLabel::kSkipped | FlowLabel::kDone;
            return Result::kDoneLabeled;
        }
        l.ctx = ctx_free_[--ctx_top_];
        ctx_[l.ctx] = Context{entry, {0, 0}, {0, 0}, 0};
        stats_.flows.add();
        stats_.in_use.add();
    }
    Context& c = ctx_[l.ctx];
    const uint32_t d = static_cast<uint32_t>(dir);
    if (c.seen[d] < cfg_.depth && c.pkts[d] < cfg_.packets) {
        if (d == 0 && c.seen[0] == 0 && !l.name) {
            const FoundName f = find_name(p, n);
            if (f.kind != NameKind::kNone) keep_name(l, f);
        }
        const uint32_t take = n < cfg_.depth - c.seen[d] ? n : cfg_.depth - c.seen[d];
        MatchCtx m{this,
                   &l,
                   engine_->ruleset().rules().data(),
                   engine_->match_counters(),
                   static_cast<uint8_t>(1u << d),
                   proto,
                   port_a,
                   port_b};
        if (hs_scan_stream(engine_->stream(l.ctx, dir), reinterpret_cast<const char*>(p), take, 0, engine_->scratch(),
                           on_match, &m) != HS_SUCCESS) {
            stats_.scan_errors.add();
            c.seen[0] = c.seen[1] = cfg_.depth;  // give up on this flow
        }
        c.seen[d] += take;
        ++c.pkts[d];
        l.inspected += take;
        stats_.packets.add();
        stats_.bytes.add(take);
    }
    ++c.total;
    const bool done0 = c.seen[0] >= cfg_.depth || c.pkts[0] >= cfg_.packets;
    const bool done1 = c.seen[1] >= cfg_.depth || c.pkts[1] >= cfg_.packets;
    if ((done0 && done1) || c.total >= 2 * cfg_.packets) {
        end_streams(l, proto, port_a, port_b);
        l.flags |= FlowLabel::kDone;
        stats_.finished.add();
        return has_findings(l) ? Result::kDoneLabeled : Result::kDoneEmpty;
    }
    return Result::kMore;
}

void Inspector::release(uint32_t entry) noexcept {
    FlowLabel& l = labels_[entry];
    if (l.ctx) {
        const uint32_t i = l.ctx;
        if (engine_) {
            hs_reset_stream(engine_->stream(i, 0), 0, nullptr, nullptr, nullptr);
            hs_reset_stream(engine_->stream(i, 1), 0, nullptr, nullptr, nullptr);
        }
        ctx_[i].entry = UINT32_MAX;
        ctx_free_[ctx_top_++] = i;
        l.ctx = 0;
        stats_.in_use.sub();
    }
    if (l.name) {
        name_free_[name_top_++] = l.name;
        l.name = 0;
    }
}

bool Inspector::restore(uint32_t entry, uint64_t hash, uint64_t now_ns, uint64_t max_age_ns) noexcept {
    if (!carry_live_) return false;
    Carry& c = carry_[hash & carry_mask_];
    if (c.hash != hash) return false;
    // Stored at the worker's clock (the newest packet time it had seen), which may be ahead of
    // this packet's own time by the rest of a burst.
    const bool fresh = (now_ns > c.ts_ns ? now_ns - c.ts_ns : 0) <= max_age_ns;
    if (fresh) {
        FlowLabel& l = labels_[entry];
        l = FlowLabel{};
        l.name = c.name;
        l.app = c.app;
        l.nrules = c.nrules;
        l.flags = static_cast<uint8_t>((c.flags & FlowLabel::kNameTruncated) | FlowLabel::kDone | FlowLabel::kCarried);
        std::memcpy(l.rules, c.rules, sizeof(l.rules));
        stats_.carried.add();
    } else if (c.name) {
        name_free_[name_top_++] = c.name;
    }
    c.hash = 0;
    --carry_live_;
    return fresh;
}

void Inspector::finish(uint32_t entry, flow::FlowRecord& r, flow::Findings& f, uint64_t carry_hash,
                       uint64_t now_ns) noexcept {
    FlowLabel& l = labels_[entry];
    if (l.ctx && engine_) {
        // Still being inspected when it ended: end-anchored patterns match now.
        const packet::Tuple& t = r.tuple;
        end_streams(l, t.proto, t.sport, t.dport);
    }
    if (has_findings(l) || (l.flags & FlowLabel::kCut)) {
        r.flags |= flow::FlowRecord::kInspected;
        r.findings = &f;
        f.app = l.app;
        f.nrules = l.nrules;
        std::memset(f.rules, 0, sizeof(f.rules));
        std::memcpy(f.rules, l.rules, sizeof(l.rules));
        f.inspected = l.inspected;
        f.flags = static_cast<uint8_t>(((l.flags & FlowLabel::kSkipped) ? flow::Findings::kInspectSkipped : 0) |
                                       ((l.flags & FlowLabel::kCut) ? flow::Findings::kInspectCut : 0) |
                                       ((l.flags & FlowLabel::kNameTruncated) ? flow::Findings::kNameTruncated : 0) |
                                       ((l.flags & FlowLabel::kCarried) ? flow::Findings::kInspectCarried : 0));
        std::memset(f.reserved, 0, sizeof(f.reserved));
        if (l.name) {
            const NameSlot& s = names_[l.name];
            f.name_kind = s.kind;
            f.name_len = s.len;
            std::memcpy(f.name, s.s, s.len);
        } else {
            f.name_kind = 0;
            f.name_len = 0;
        }
        if (carry_hash && carry_ && (l.app || l.nrules || l.name)) {
            // The conversation goes on: its next entry takes these findings (and the name slot).
            Carry& c = carry_[carry_hash & carry_mask_];
            if (c.hash) {
                if (c.name) name_free_[name_top_++] = c.name;
            } else {
                ++carry_live_;
            }
            c = Carry{carry_hash, now_ns, l.name, l.app, l.nrules, l.flags, {}, {}};
            std::memcpy(c.rules, l.rules, sizeof(c.rules));
            l.name = 0;
        }
    }
    release(entry);
}

}  // namespace weir::inspect
