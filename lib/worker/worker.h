// SPDX-License-Identifier: BSD-3-Clause
// A worker lcore: owns RX queue q of every port, its flow-table shard and its tunnel contexts.
// Run to completion: rx burst -> decode (through tunnels) -> hash + prefetch -> update -> expire
// -> fixed 256-byte records, handed in batches to the control thread over an SPSC ring, which
// encodes them for the exporters. A tunneled packet whose inner conversation belongs to another
// worker (its outer headers were spread by RSS, not its inner ones) goes to that worker over a
// ring of its own. Nothing here blocks, locks or allocates after start, except that a replay and
// the final flush wait for free buffers instead of dropping.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/counter.h"
#include "detect/observer.h"
#include "flow/flow_record.h"
#include "flow/flow_table.h"
#include "flow/tunnel_table.h"
#include "inspect/inspector.h"
#include "packet/decode.h"

struct rte_ring;
struct rte_mbuf;

namespace weir {

// A batch of ended conversations handed from a worker to the control thread, which encodes
// them for every exporter. Batches come from the worker's fixed pool and go back through the
// free ring.
struct RecordBatch {
    uint32_t count;
    uint32_t domain;        // IPFIX observation domain of the worker
    uint64_t packets;       // in the records of the batch that are not outer copies
    uint64_t copy_packets;  // in its outer-copy records (tunnels' own flows in the both mode)
    flow::FlowRecord* records;
    flow::Findings* findings;  // beside records[i] (payload inspection); records point into it
};

struct RxQueueRef {
    uint16_t port;
    uint16_t queue;
    uint16_t linktype;
    uint32_t ts_ns_per_unit;  // 0: packets are stamped from the TSC at RX
};

// A tunneled packet on its way to the worker that owns its inner conversation, decoded: the
// layer its flow is keyed on and the tunnel that carried it. The packet itself stays with (and is
// freed by) the worker that received it.
struct Handoff {
    packet::Layer layer;
    packet::TunnelInfo tunnel;
    uint64_t ts_ns;
    uint16_t port;
    bool has_macs;
    uint8_t macs[16];  // MAC addresses and top MPLS entry (PacketInfo::macs)
    uint8_t reserved[5];
};
static_assert(sizeof(Handoff) == 128);  // two whole cache lines a slot: no line shared by two slots

// A packet a capture rule chose, copied for the capture writer (a thread of the control side):
// this header, then up to the snaplen of the frame's bytes.
struct CaptureSlot {
    uint64_t ts_ns;
    uint32_t wire_len;  // the frame's length as received
    uint32_t cap_len;   // bytes that follow
    uint16_t rule;      // inspect::Registry handle of the capture rule
    uint16_t linktype;
    uint16_t port;
    uint16_t reserved;
    packet::Tuple tuple;  // the flow's initiator direction
    uint8_t* data() noexcept { return reinterpret_cast<uint8_t*>(this + 1); }
    const uint8_t* data() const noexcept { return reinterpret_cast<const uint8_t*>(this + 1); }
};
static_assert(sizeof(CaptureSlot) == 64);

struct alignas(64) QueueStats {
    Counter packets;
    Counter bytes;
};

struct alignas(64) WorkerStats {
    Counter rx_packets;
    Counter rx_bytes;
    Counter multi_segment;                           // packets that arrived in more than one mbuf
    Counter linearized;                              // ... whose headers crossed a segment and were copied to decode
    Counter drops[packet::kDropCount];               // by packet::Drop
    Counter l4_truncated;                            // accounted with ports 0, not dropped
    Counter ipv6_ext_limit;                          // more extension headers than followed, accounted
    Counter sampled_out;                             // received but not selected by packet sampling
    Counter tunneled[packet::kTunnelTypeCount];      // packets opened, by the innermost tunnel's type
    Counter tunnel_stops[packet::kTunnelStopCount];  // tunnels not followed, by reason (accounted outside)
    Counter outer_copies;                            // packets accounted a second time, in their tunnel's own flow
    Counter handed_out;                              // packets passed to the worker owning their inner conversation
    Counter handed_in;                               // packets received from other workers
    Counter handoff_dropped;                         // hand-off ring full (live ports): packets lost
    Counter records;                                 // flow records (ended conversations) written
    Counter batches;                                 // record batches handed to the control thread
    Counter dropped_records;                         // no batch free or ring full: records lost
    Counter dropped_packets;                         // packets in those records (not outer copies)
    Counter dropped_copy_packets;                    // packets in lost outer-copy records
    Counter captured;                                // packets copied for the capture files
    Counter capture_dropped;                         // chosen for capture but no slot free (writer behind)
    Counter busy_cycles;
    Counter total_cycles;
};

// One direction of an active flow, as the status API's top list shows it.
struct TopFlow {
    packet::Tuple tuple;
    uint64_t packets;
    uint64_t octets;
    uint64_t first_ns;
    uint64_t last_ns;
    uint32_t tunnel_id;
    uint8_t tunnel_type;
    bool outer_copy;
    uint16_t cvlan;
    uint16_t app;  // inspect::Registry application handle, 0 none (yet)
};

constexpr uint32_t kMaxHandoffTargets = 128;  // = the largest worker count the configuration allows

struct WorkerConfig {
    uint32_t index = 0;
    uint32_t burst = 32;
    uint32_t domain = 1;
    uint32_t batch_records = 32;  // records per batch handed to the control thread
    uint32_t buffers = 1024;      // batches in the worker's pool
    uint64_t max_delay_cycles = 0;
    bool replay = false;  // time only from packets; wait for buffers instead of dropping
    flow::TableConfig table;
    const packet::DecodeOptions* decode = nullptr;    // shared, read-only; nullptr: the defaults
    uint32_t tunnel_contexts = 65536;                 // distinct tunnels the worker's flows may ride in
    uint32_t workers = 1;                             // all workers: the inner conversation's owner is one of them
    bool handoff = false;                             // pass tunneled packets to their inner conversation's owner
    uint32_t sample_interval = 0;                     // keep 1 in N received packets (0: all)
    bool sample_random = false;                       // ... at random (probability 1/N) rather than every Nth
    const inspect::InspectConfig* inspect = nullptr;  // payload inspection (nullptr: none)
    uint32_t capture_slots = 4096;                    // packets waiting for the capture writer (with capture rules)
    uint32_t capture_snaplen = 2048;                  // bytes of a captured frame kept
    const detect::ObserverConfig* detect = nullptr;   // scans, floods, reflection (nullptr: none)
};

class Worker {
public:
    Worker(const WorkerConfig& cfg, std::vector<RxQueueRef> queues, int ts_offset, uint64_t ts_flag, uint64_t tsc_hz,
           uint64_t wall_ns0, uint64_t tsc0);  // throws at start-up
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // The Handoff rings of every worker (`inbound[i]`: worker i's, multi-producer, single-consumer;
    // this worker's own is the one it takes from), and the count of workers that stopped
    // receiving, shared by all. Before run().
    void connect(std::vector<rte_ring*> inbound, std::atomic<uint32_t>* rx_stopped);

    // The lcore entry point. Returns when stop is requested, after flushing every flow.
    void run() noexcept;
    static int lcore_main(void* self) noexcept;

    // What the control side asks of a running worker goes through its mailbox (a small
    // multi-producer, single-consumer ring of typed commands, as in DPDK's ip_pipeline): the worker
    // takes them between bursts, and nothing it reads while working is written by another
    // thread. Each call returns false when the mailbox is full (it holds kMailbox commands).
    struct Command {
        enum class Kind : uint32_t { kStop = 1, kTimeouts, kTop, kEngine };
        Kind kind;
        uint32_t ticket;                          // kTop
        uint32_t n;                               // kTop
        uint32_t by_packets;                      // kTop
        uint64_t idle_ns, active_ns, tcp_end_ns;  // kTimeouts; idle_ns: kEngine's generation
        inspect::Engine* engine;                  // kEngine
    };
    static constexpr unsigned kMailbox = 64;
    bool request_stop() noexcept;
    bool done() const noexcept { return done_.load(std::memory_order_acquire); }
    bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }

    rte_ring* full_ring() const noexcept { return full_; }
    // Selective capture: slots with packets for the writer, and the ring it returns them on
    // (nullptr when capture is off).
    rte_ring* capture_ring() const noexcept { return cap_full_; }
    rte_ring* capture_free_ring() const noexcept { return cap_free_; }
    rte_ring* free_ring() const noexcept { return free_; }
    const WorkerStats& stats() const noexcept { return stats_; }
    const flow::TableStats& table_stats() const noexcept { return table_->stats(); }
    const flow::TunnelTableStats& tunnel_stats() const noexcept { return tunnels_->stats(); }
    uint32_t tunnel_capacity() const noexcept { return tunnels_->capacity(); }
    uint32_t table_size() const noexcept { return table_->size(); }
    uint32_t table_capacity() const noexcept { return table_->capacity(); }
    size_t table_memory() const noexcept { return table_->memory_bytes() + tunnels_->memory_bytes(); }
    const QueueStats& queue_stats(size_t i) const noexcept { return qstats_[i]; }
    const std::vector<RxQueueRef>& queues() const noexcept { return queues_; }
    uint32_t domain() const noexcept { return cfg_.domain; }
    uint32_t index() const noexcept { return cfg_.index; }

    // Top flows without stopping the worker: request_top() from any thread, then wait for
    // top_ready(). The worker walks its table a slice per loop iteration, keeping the heaviest
    // `n` directions by bytes (or packets), and publishes them. One request at a time.
    static constexpr uint32_t kTopMax = 1000;
    // The ticket to wait for, or 0 when the mailbox is full.
    uint32_t request_top(bool by_packets, uint32_t n) noexcept;
    bool top_ready(uint32_t ticket) const noexcept { return top_done_.load(std::memory_order_acquire) == ticket; }
    const std::vector<TopFlow>& top_result() const noexcept { return top_result_; }

    // Payload inspection (WorkerConfig::inspect): the engine to scan with. attach_engine() before
    // run(); set_engine() while running, after which engine_generation() reaches `generation` once
    // the worker has let go of the previous engine (the caller may then free it).
    void attach_engine(inspect::Engine* e) noexcept;
    bool set_engine(inspect::Engine* e, uint64_t generation) noexcept;
    uint64_t engine_generation() const noexcept { return engine_gen_.load(std::memory_order_acquire); }
    const inspect::Inspector* inspector() const noexcept { return inspector_.get(); }
    // Detection's per-interval observations (nullptr when off): the control side takes them.
    detect::Observer* observer() const noexcept { return observer_.get(); }

    // New timeouts from a reload; the worker applies them at its next loop iteration.
    bool set_timeouts(uint64_t idle_ns, uint64_t active_ns, uint64_t tcp_end_ns) noexcept;
    uint32_t ring_occupancy() const noexcept;

    // Called by the flow table for each conversation that starts and ends.
    void on_created(const flow::FlowEntry& e) noexcept {
        if (e.key.tunnel) tunnels_->acquire(e.key.tunnel);
    }
    void on_expired(const flow::FlowEntry& e, flow::EndReason why) noexcept;

    // The pipeline steps run() is made of, public so the benchmark drives the same code:
    // one burst (decode, hash + prefetch, update; tunneled packets of other workers' inner
    // conversations handed to them), the packets other workers handed over, the per-iteration
    // housekeeping (expiry, hand-off of a batch that waited long enough), and the final flush.
    void process_burst(const RxQueueRef& q, QueueStats& qs, rte_mbuf** pkts, uint16_t n, uint64_t now_ns) noexcept;
    unsigned drain_handoffs() noexcept;
    void housekeeping(uint64_t now_ns, uint64_t now_tsc) noexcept;
    void finish() noexcept;

private:
    // The layers of one burst on their way into the table: each is hashed and its buckets
    // prefetched as soon as it is added (tunnels interned and pinned), then all are located and
    // updated together, so memory latency overlaps across the burst.
    struct Burst;
    void add(Burst& b, const packet::Layer& l, const packet::TunnelInfo* tunnel, uint8_t view, uint64_t ts,
             uint16_t port, const uint8_t* macs, const uint8_t* payload = nullptr, uint32_t plen = 0,
             const rte_mbuf* m = nullptr) noexcept;
    void inspect_packet(uint32_t where, uint64_t hash, const uint8_t* payload, uint32_t plen, const rte_mbuf* m,
                        uint16_t linktype, uint64_t ts, uint16_t port) noexcept;
    void capture(const flow::FlowEntry& e, uint16_t rule, const rte_mbuf* m, uint16_t linktype, uint64_t ts,
                 uint16_t port) noexcept;
    void account(Burst& b) noexcept;
    void observe(const packet::Layer& l, uint32_t where, uint64_t ts, uint64_t dest_hash) noexcept;
    // Hands decoded packets to their owners: one burst per owner ring.
    void send_handoffs(Handoff* out, const uint32_t* owner, uint32_t n) noexcept;
    void enqueue_handoffs(uint32_t owner, const Handoff* h, uint32_t n) noexcept;
    bool acquire_buffer() noexcept;
    void hand_off() noexcept;
    uint64_t tsc_to_ns(uint64_t tsc) const noexcept;
    uint32_t owner_of(const packet::PacketInfo& pi, uint64_t tunnel_hash) const noexcept;
    void top_step() noexcept;
    void take_commands() noexcept;
    bool post(const Command& c) noexcept;

    WorkerConfig cfg_;
    const packet::DecodeOptions* decode_;
    std::vector<RxQueueRef> queues_;
    std::unique_ptr<QueueStats[]> qstats_;
    std::unique_ptr<flow::FlowTable> table_;
    std::unique_ptr<flow::TunnelTable> tunnels_;
    std::unique_ptr<inspect::Inspector> inspector_;
    std::unique_ptr<detect::Observer> observer_;
    bool inspect_on_ = false;       // an inspector with an engine
    rte_ring* cap_full_ = nullptr;  // CaptureSlot*, this worker produces, the writer consumes
    rte_ring* cap_free_ = nullptr;  // ... and back
    std::unique_ptr<uint8_t[]> cap_mem_;
    uint32_t cap_snaplen_ = 0;
    std::atomic<uint64_t> engine_gen_{0};
    RecordBatch* current_ = nullptr;
    uint64_t current_since_ = 0;  // TSC when the current batch got its first record
    std::vector<RecordBatch> pool_;
    std::unique_ptr<flow::FlowRecord[]> pool_records_;
    std::unique_ptr<flow::Findings[]> pool_findings_;  // with payload inspection
    rte_ring* full_ = nullptr;
    rte_ring* free_ = nullptr;
    std::vector<rte_ring*> inbound_;  // hand-off rings of all workers, by worker
    rte_ring* mine_ = nullptr;        // this worker's
    std::atomic<uint32_t>* rx_stopped_ = nullptr;
    std::unique_ptr<uint8_t[]> linear_;  // contiguous copy of a multi-segment frame's headers
    int ts_offset_;
    uint64_t ts_flag_;
    uint64_t tsc_hz_;
    uint64_t wall_ns0_;
    uint64_t tsc0_;
    uint64_t clock_ns_ = 0;     // newest packet time seen: the expiry clock
    uint32_t sample_left_ = 0;  // packets until the next one sampling keeps
    uint64_t rng_ = 0;          // xorshift64* state for random sampling
    uint16_t sample(rte_mbuf** pkts, uint16_t n, rte_mbuf** kept, uint64_t& skipped_bytes) noexcept;
    bool final_flush_ = false;
    // Top-flows request (written by the requester before the ticket is published).
    rte_ring* mailbox_ = nullptr;  // Command, many producers, this worker consumes
    std::atomic<uint32_t> top_tickets_{0};
    std::atomic<uint32_t> top_done_{0};
    bool top_by_packets_ = false;  // of the scan in progress, the worker's own copy
    uint32_t top_n_ = 20;
    uint32_t top_scanning_ = 0;  // ticket being worked on, 0 for none
    uint32_t top_pos_ = 0;
    std::vector<TopFlow> top_heap_;    // preallocated, kTopMax
    std::vector<TopFlow> top_result_;  // preallocated, kTopMax
    // Timeouts from a reload.
    bool stopping_ = false;  // a kStop was taken
    std::atomic<bool> done_{false};
    std::atomic<bool> ready_{false};
    WorkerStats stats_;
};

}  // namespace weir
