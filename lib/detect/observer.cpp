// SPDX-License-Identifier: BSD-3-Clause
#include "detect/observer.h"

#include <cstring>

namespace weir::detect {
namespace {

constexpr uint8_t kSyn = 0x02, kRst = 0x04, kAck = 0x10;

uint32_t round_pow2(uint32_t n) {
    uint32_t c = 8;
    while (c < n) c <<= 1;
    return c;
}

ProtoClass proto_class(uint8_t p) {
    switch (p) {
        case 6: return kTcp;
        case 17: return kUdpClass;
        case 1:
        case 58: return kIcmp;
        default: return kOtherProto;
    }
}

bool icmp_echo_request(const packet::Tuple& t) {
    const unsigned type = t.dport >> 8;
    return (t.proto == 1 && type == 8) || (t.proto == 58 && type == 128);
}

template <size_t N>
void sample_port(uint16_t (&ports)[N], uint16_t& n, uint16_t port) {
    for (uint16_t i = 0; i < n; ++i)
        if (ports[i] == port) return;
    if (n < N) ports[n++] = port;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

const char* probe_name(Probe p) noexcept {
    switch (p) {
        case Probe::kTcpSyn: return "tcp_syn";
        case Probe::kTcpAck: return "tcp_ack";
        case Probe::kUdp: return "udp";
        case Probe::kIcmpEcho: return "icmp_echo";
        case Probe::kDns: return "dns";
        case Probe::kOther: return "other";
    }
    return "?";
}

template <class E>
GroupTable<E>::GroupTable(uint32_t capacity)
    : capacity_(round_pow2(capacity)),
      mask_(capacity_ - 1),
      tags_(new uint16_t[capacity_]()),
      entries_(new E[capacity_]()) {}

template <class E>
void GroupTable<E>::clear() noexcept {
    if (size_) std::memset(tags_.get(), 0, sizeof(uint16_t) * capacity_);
    size_ = 0;
}

template <class E>
template <class Same>
E* GroupTable<E>::find_or_add(uint64_t hash, Same&& same, bool& created) noexcept {
    const uint32_t g = static_cast<uint32_t>(hash) & mask_ & ~7u;
    const auto tag = static_cast<uint16_t>((hash >> 48) | 1);
    created = false;
    for (uint32_t i = g; i < g + 8; ++i) {
        if (tags_[i] == tag && same(entries_[i])) return &entries_[i];
        if (tags_[i] == 0) {  // slots fill in order and never empty within an interval: not here
            tags_[i] = tag;
            ++size_;
            std::memset(static_cast<void*>(&entries_[i]), 0, sizeof(E));
            created = true;
            return &entries_[i];
        }
    }
    return nullptr;
}

template <class E>
template <class Same>
const E* GroupTable<E>::find(uint64_t hash, Same&& same) const noexcept {
    const uint32_t g = static_cast<uint32_t>(hash) & mask_ & ~7u;
    const auto tag = static_cast<uint16_t>((hash >> 48) | 1);
    for (uint32_t i = g; i < g + 8; ++i) {
        if (tags_[i] == tag && same(entries_[i])) return &entries_[i];
        if (tags_[i] == 0) return nullptr;
    }
    return nullptr;
}

template class GroupTable<SourceEntry>;
template class GroupTable<PairEntry>;
template class GroupTable<DestEntry>;

Bank::Bank(const ObserverConfig& c)
    : sources(c.sources), pairs(c.pairs), dests(c.destinations), cms(new uint32_t[2 * kCmsWidth]()) {}

void Bank::reset(uint64_t interval) noexcept {
    first_interval = last_interval = interval;
    if (used) {
        sources.clear();
        pairs.clear();
        dests.clear();
        std::memset(cms.get(), 0, sizeof(uint32_t) * 2 * kCmsWidth);
    }
    used = false;
    overflow_sources = overflow_pairs = overflow_destinations = 0;
}

Observer::Observer(const ObserverConfig& c) : cfg_(c), banks_{Bank(c), Bank(c)} {
    if (cfg_.interval_ns == 0) cfg_.interval_ns = 1'000'000'000ull;
}

size_t Observer::memory_bytes() const noexcept {
    size_t n = 0;
    for (const Bank& b : banks_)
        n += b.sources.memory_bytes() + b.pairs.memory_bytes() + b.dests.memory_bytes() +
            2 * Bank::kCmsWidth * sizeof(uint32_t);
    return n;
}

void Observer::packet(const packet::Layer& l, const Seen& s, uint64_t ts) noexcept {
    if (end_ns_ == 0) [[unlikely]] {
        const uint64_t k = ts / cfg_.interval_ns;
        banks_[cur_].first_interval = banks_[cur_].last_interval = k;
        end_ns_ = (k + 1) * cfg_.interval_ns;
        through_.store(k, std::memory_order_release);
    } else if (ts >= end_ns_) [[unlikely]] {
        roll(ts);  // the first packet of a later interval: not in the bank of an earlier one
    }
    Bank& b = banks_[cur_];
    b.used = true;
    const packet::Tuple& t = l.tuple;
    const uint64_t h = addr_hash(t.dst, t.ip_version);
    // Unsolicited responses: a reflector's packets in a flow that its answer opened.
    const bool amp = s.initiator &&
        ((t.proto == 17 && cfg_.amplifiers.test(t.sport)) || (t.proto == 6 && (l.tcp_flags & (kSyn | kAck)) == (kSyn | kAck)));
    uint32_t* c1 = &b.cms[h & (Bank::kCmsWidth - 1)];
    uint32_t* c2 = &b.cms[Bank::kCmsWidth + ((h >> 32) & (Bank::kCmsWidth - 1))];
    const uint32_t est = ++*c1 < ++*c2 ? *c1 : *c2;
    if (est >= cfg_.promote_packets || amp) touch_dest(b, l, h, ts, s, amp, t.proto == 17 ? t.sport : 0);
    if (s.new_flow && !amp) {
        if (t.proto == 6) {
            const uint8_t f = l.tcp_flags;
            if (f & kRst) return;
            probe(b, l, (f & kSyn) ? Probe::kTcpSyn : (f & kAck) ? Probe::kTcpAck : Probe::kOther, ts);
        } else if (t.proto == 17) {
            probe(b, l, Probe::kUdp, ts);
            if (t.dport == 53) probe(b, l, Probe::kDns, ts);
        } else if (icmp_echo_request(t)) {
            probe(b, l, Probe::kIcmpEcho, ts);
        }
    } else if (s.first_answer) [[unlikely]] {
        answer(b, l);
    }
}

void Observer::touch_dest(Bank& b, const packet::Layer& l, uint64_t h, uint64_t ts, const Seen& s, bool amp,
                          uint16_t amp_port) noexcept {
    const packet::Tuple& t = l.tuple;
    bool created;
    DestEntry* e = b.dests.find_or_add(
        h, [&](const DestEntry& d) { return d.version == t.ip_version && std::memcmp(d.dst, t.dst, 16) == 0; },
        created);
    if (!e) {
        ++b.overflow_destinations;
        return;
    }
    if (created) {
        std::memcpy(e->dst, t.dst, 16);
        e->version = t.ip_version;
        e->first_ns = ts;
    }
    if (ts > e->last_ns) e->last_ns = ts;
    const ProtoClass pc = proto_class(t.proto);
    ++e->packets[pc];
    e->bytes[pc] += l.ip_octets;
    if (t.proto == 6 && (l.tcp_flags & (kSyn | kAck)) == kSyn) {
        ++e->syns;
        e->syn_ports.add(mix64(t.dport ^ 0x5959'0000ull));
    }
    if (s.completion) ++e->completions;
    const uint64_t hs = addr_hash(t.src, t.ip_version);
    e->sources.add(hs);
    if (e->nsamples < 5) {
        bool known = false;
        for (unsigned i = 0; i < e->nsamples && !known; ++i) known = std::memcmp(e->samples[i], t.src, 16) == 0;
        if (!known) {
            if (e->nsamples < 4) std::memcpy(e->samples[e->nsamples], t.src, 16);
            ++e->nsamples;
        }
    }
    if (amp) {
        ++e->amp_packets;
        e->amp_bytes += l.ip_octets;
        e->amplifiers.add(hs);
        unsigned i = 0;
        while (i < e->namp_ports && e->amp_ports[i] != amp_port) ++i;
        if (i == e->namp_ports && i < 4) e->amp_ports[e->namp_ports++] = amp_port;
        if (i < 4) ++e->amp_port_packets[i];
    }
}

void Observer::probe(Bank& b, const packet::Layer& l, Probe kind, uint64_t ts) noexcept {
    const packet::Tuple& t = l.tuple;
    const uint64_t hs = addr_hash(t.src, t.ip_version);
    const uint64_t hd = addr_hash(t.dst, t.ip_version);
    const uint64_t hp = mix64((uint64_t{t.proto} << 16 | t.dport) ^ 0x7070'0000'0000ull);
    bool created;
    const auto k = static_cast<uint8_t>(kind);
    SourceEntry* se = b.sources.find_or_add(
        hs ^ mix64(k + 1),
        [&](const SourceEntry& e) {
            return e.kind == k && e.version == t.ip_version && std::memcmp(e.src, t.src, 16) == 0;
        },
        created);
    if (se) {
        if (created) {
            std::memcpy(se->src, t.src, 16);
            se->version = t.ip_version;
            se->kind = k;
            se->first_ns = ts;
        }
        if (ts > se->last_ns) se->last_ns = ts;
        ++se->probes;
        if (kind == Probe::kDns && l.ip_octets >= cfg_.dns_long) ++se->long_queries;
        se->dsts.add(hd);
        se->dports.add(hp);
        sample_port(se->ports, se->nports, t.dport);
    } else {
        ++b.overflow_sources;
    }
    if (kind == Probe::kDns) return;  // its UDP probe already counted for the pair
    PairEntry* pe = b.pairs.find_or_add(
        hs ^ (hd * 0x9E3779B97F4A7C15ull),
        [&](const PairEntry& e) {
            return e.version == t.ip_version && std::memcmp(e.src, t.src, 16) == 0 &&
                std::memcmp(e.dst, t.dst, 16) == 0;
        },
        created);
    if (!pe) {
        ++b.overflow_pairs;
        return;
    }
    if (created) {
        std::memcpy(pe->src, t.src, 16);
        std::memcpy(pe->dst, t.dst, 16);
        pe->version = t.ip_version;
        pe->proto = t.proto;
        pe->first_ns = ts;
    }
    if (ts > pe->last_ns) pe->last_ns = ts;
    ++pe->probes;
    pe->dports.add(hp);
    sample_port(pe->ports, pe->nports, t.dport);
}

// The responder's first packet: the probe that opened the flow was answered (a SYN-ACK, any UDP,
// TCP without SYN or RST for a flow that opened without SYN).
void Observer::answer(Bank& b, const packet::Layer& l) noexcept {
    const packet::Tuple& t = l.tuple;
    Probe kind;
    if (t.proto == 6 && (l.tcp_flags & (kSyn | kAck)) == (kSyn | kAck))
        kind = Probe::kTcpSyn;
    else if (t.proto == 6 && !(l.tcp_flags & (kSyn | kRst)))
        kind = Probe::kTcpAck;  // a flow seen mid-way goes on both ways; an ACK probe gets a RST
    else if (t.proto == 17)
        kind = Probe::kUdp;
    else
        return;
    // The initiator is this packet's destination.
    const uint64_t hi = addr_hash(t.dst, t.ip_version);
    const uint64_t hr = addr_hash(t.src, t.ip_version);
    const auto k = static_cast<uint8_t>(kind);
    bool created;
    if (SourceEntry* se = b.sources.find_or_add(
            hi ^ mix64(k + 1),
            [&](const SourceEntry& e) {
                return e.kind == k && e.version == t.ip_version && std::memcmp(e.src, t.dst, 16) == 0;
            },
            created)) {
        if (created) {  // the probe fell in an earlier interval: the answer still counts
            std::memcpy(se->src, t.dst, 16);
            se->version = t.ip_version;
            se->kind = k;
        }
        ++se->answered;
    } else {
        ++b.overflow_sources;
    }
    if (PairEntry* pe = b.pairs.find_or_add(
            hi ^ (hr * 0x9E3779B97F4A7C15ull),
            [&](const PairEntry& e) {
                return e.version == t.ip_version && std::memcmp(e.src, t.dst, 16) == 0 &&
                    std::memcmp(e.dst, t.src, 16) == 0;
            },
            created)) {
        if (created) {
            std::memcpy(pe->src, t.dst, 16);
            std::memcpy(pe->dst, t.src, 16);
            pe->version = t.ip_version;
            pe->proto = t.proto;
        }
        ++pe->answered;
    } else {
        ++b.overflow_pairs;
    }
}

bool Observer::publish() noexcept {
    if (taken_.load(std::memory_order_acquire) != published_.load(std::memory_order_relaxed)) return false;
    Bank& b = banks_[cur_];
    ovf_src_.store(ovf_src_.load(std::memory_order_relaxed) + b.overflow_sources, std::memory_order_relaxed);
    ovf_pair_.store(ovf_pair_.load(std::memory_order_relaxed) + b.overflow_pairs, std::memory_order_relaxed);
    ovf_dst_.store(ovf_dst_.load(std::memory_order_relaxed) + b.overflow_destinations, std::memory_order_relaxed);
    intervals_.store(intervals_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    published_bank_ = cur_;
    published_.store(published_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    cur_ ^= 1;
    return true;
}

void Observer::roll(uint64_t now_ns) noexcept {
    if (end_ns_ == 0) {  // nothing seen yet: a live worker's clock still completes intervals
        if (now_ns) through_.store(now_ns / cfg_.interval_ns, std::memory_order_release);
        return;
    }
    if (now_ns < end_ns_) return;
    const uint64_t k = now_ns / cfg_.interval_ns;
    Bank& b = banks_[cur_];
    if (b.used) {
        b.last_interval = k;
        if (cfg_.wait)  // a replay loses nothing by waiting: its packets wait in the file
            while (!publish()) cpu_relax();
        else if (!publish()) {
            late_.store(late_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            end_ns_ = (k + 1) * cfg_.interval_ns;
            return;  // intervals before k are not complete here until this bank is published
        }
    }
    banks_[cur_].reset(k);
    end_ns_ = (k + 1) * cfg_.interval_ns;
    through_.store(k, std::memory_order_release);
}

void Observer::finish() noexcept {
    Bank& b = banks_[cur_];
    if (b.used) {
        b.last_interval = end_ns_ / cfg_.interval_ns;
        while (!publish()) cpu_relax();
    }
    through_.store(UINT64_MAX, std::memory_order_release);
}

const Bank* Observer::take() const noexcept {
    return published_.load(std::memory_order_acquire) != taken_.load(std::memory_order_relaxed)
        ? &banks_[published_bank_]
        : nullptr;
}

void Observer::give() noexcept {
    taken_.store(published_.load(std::memory_order_relaxed), std::memory_order_release);
}

ObserverStats Observer::stats() const noexcept {
    return ObserverStats{intervals_.load(std::memory_order_relaxed), late_.load(std::memory_order_relaxed),
                         ovf_src_.load(std::memory_order_relaxed), ovf_pair_.load(std::memory_order_relaxed),
                         ovf_dst_.load(std::memory_order_relaxed)};
}

}  // namespace weir::detect
