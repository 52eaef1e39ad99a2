// SPDX-License-Identifier: BSD-3-Clause
// Capture replay at memory speed: the files are read in large pieces into a few reused buffers
// (capture/reader.h) and every packet goes to the workers as an mbuf whose buffer is the packet
// inside one of them (an external buffer: no copy; the buffer is read into again once the workers
// have freed every mbuf in it), through a DPDK ring port with one RX queue per worker. A reader thread (not
// a worker: it may wait and sleep) spreads the packets over the queues by a hash of the
// outermost addresses and ports that is the same for both directions, as symmetric RSS does
// on a live port, so `-w N` puts N workers on one file. Packet times are the capture's (the RX
// timestamp dynfield, in nanoseconds). A replay loses nothing: the reader waits when a queue is
// full.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capture/reader.h"
#include "packet/decode.h"

struct rte_mempool;
struct rte_ring;

namespace weir::dpdk {

// The capture files of a net_pcap device that only replays files ("net_pcap0,rx_pcap=a.pcap,
// rx_pcap=b.pcap"), in order; empty when the device has any other argument (a live libpcap
// interface, say), which stays with net_pcap.
std::vector<std::string> replay_files(const std::string& device);

struct ReplayStats {
    std::atomic<uint64_t> packets{0};  // handed to the queues
    std::atomic<uint64_t> waits{0};    // times the reader waited for room (a queue or the buffer pool full)
    std::atomic<bool> done{false};     // every file read to its end (or to where it is damaged) and handed over
};

class Replay {
public:
    // Opens and maps every file; all must have one link type. With `count`, reads them through
    // once now for packets() and problems() (a configuration check); otherwise the reader counts
    // as it goes. Throws std::runtime_error naming the file and the reason.
    Replay(std::vector<std::string> files, bool count);
    ~Replay();  // stops the reader and unmaps the files
    Replay(const Replay&) = delete;
    Replay& operator=(const Replay&) = delete;

    int linktype() const noexcept { return linktype_; }
    // What the files hold, read to their ends: counted at start, or handed out so far.
    uint64_t packets() const noexcept;
    // Where a file stops early (damaged), "file: reason" per such file: after counting, or once
    // the reader is done (it also logs them as it finds them).
    const std::vector<std::string>& problems() const noexcept { return problems_; }
    const std::vector<std::string>& files() const noexcept { return files_; }

    // After EAL: the ring port `name` with `queues` RX queues (one per worker) and its buffer
    // pool on `socket`, and the RX timestamp dynfield registered (if no driver did). Returns the
    // DPDK port id. Throws std::runtime_error.
    uint16_t make_port(const std::string& name, uint16_t queues, int socket);
    // Starts the reader thread: packets stamped in the RX timestamp dynfield, spread over the
    // queues by the outermost headers.
    void start();
    // Stops the reader (at once, wherever it is) and waits for it.
    void stop();
    const ReplayStats& stats() const noexcept { return stats_; }

private:
    void run() noexcept;
    uint16_t queue_of(const capture::Packet& p) noexcept;

    std::vector<std::string> files_;
    std::vector<std::unique_ptr<capture::CaptureReader>> readers_;
    std::vector<std::string> problems_;
    int linktype_ = 1;
    bool counted_ = false;
    uint64_t packets_ = 0;
    uint16_t queues_ = 0;
    std::vector<rte_ring*> rings_;
    rte_mempool* pool_ = nullptr;
    packet::DecodeOptions decode_;
    int ts_offset_ = -1;
    uint64_t ts_flag_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    ReplayStats stats_;
};

}  // namespace weir::dpdk
