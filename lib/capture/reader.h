// SPDX-License-Identifier: BSD-3-Clause
// Capture files read in place: a pcap or pcapng file is memory-mapped (or read in large pieces
// into reused buffers) and its packets are handed out as pointers into it, with no copy and no
// system call per packet, so a replay feeds the workers at memory speed. Reads what libpcap reads, packet for packet: the same packets,
// captured lengths, times (in nanoseconds) and link type, and it stops where libpcap stops on a
// damaged file (the reason in error()); tests check it against libpcap over every capture. One
// deliberate difference: a pcap record's seconds and fraction are unsigned, as the format says
// (libpcap 1.10 sign-extends them, so a time after 2038 reads as 1901). Another: the fraction of
// a pcapng time in binary units finer than 2^-34 s is exact (libpcap's overflows).
//
// Formats: pcap (microsecond and nanosecond magics, either byte order, the 2.3 length swap) and
// pcapng (sections, interfaces with if_tsresol/if_tsoffset, enhanced, simple and obsolete packet
// blocks; other blocks are skipped). Like libpcap, a file's interfaces share one link type and
// snapshot length. No DPDK here: unit-tested and fuzzed on plain bytes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace weir::capture {

struct Packet {
    const uint8_t* data = nullptr;
    uint32_t caplen = 0;   // bytes in the file (after libpcap's snapshot cut)
    uint32_t wirelen = 0;  // length on the wire as the file says
    uint64_t ts_ns = 0;    // since the epoch
};

class CaptureReader {
public:
    // Maps `path`. Throws std::runtime_error with the reason (unreadable, not a capture, a
    // header libpcap would refuse).
    explicit CaptureReader(const std::string& path);
    // Reads `path` with read() in pieces of `piece` bytes into a few reused buffers (on huge
    // pages where they are large enough) instead of mapping it: where every 4 KiB page of a
    // mapping costs microseconds (a VM), this is several times faster than walking the mapping.
    // A packet's data stays valid while the reader lives and the buffer it is in is held: see
    // hold() and release(). Throws like the above.
    struct Streamed {};
    CaptureReader(const std::string& path, Streamed, size_t piece = 4u << 20);
    // Reads bytes the caller keeps alive (tests, fuzzing). Throws like the above.
    CaptureReader(const uint8_t* data, size_t size);
    ~CaptureReader();
    CaptureReader(const CaptureReader&) = delete;
    CaptureReader& operator=(const CaptureReader&) = delete;

    // The next packet; false at the end of the file or where it is damaged (error() says why,
    // and stays empty at a clean end). The data stays valid while the reader lives. Page tables
    // of a mapped file are filled ahead of the reading position (MADV_POPULATE_READ), so a
    // consumer of the data (a worker) takes no page fault.
    bool next(Packet& p) noexcept;
    // Back to the first packet.
    void rewind() noexcept;

    // A read file (Streamed): a token for the buffer that holds the packet next() last gave, to
    // be given to release() once for each hold() when the packet's data is no longer used (a
    // worker freed the mbuf). The buffer is read into again only after that. nullptr for a
    // mapped file or bytes the caller keeps (release(nullptr) does nothing).
    void* hold() noexcept;
    static void release(void* token) noexcept;
    // Frees the buffers no packet holds any more (a read file keeps them for reuse until its
    // end, and those still held at its end until this is called or the reader goes).
    void trim() noexcept;

    int linktype() const noexcept { return linktype_; }  // DLT_ value, as pcap_datalink() gives
    uint32_t snapshot() const noexcept { return snapshot_; }
    bool pcapng() const noexcept { return ng_; }
    bool nanosecond() const noexcept { return nsec_; }  // a pcap file of the nanosecond magic
    const std::string& error() const noexcept { return error_; }
    // The time resolution of the interface of the last packet next() gave (pcapng): units per
    // second, and whether they are a power of 2. Fractions of a binary resolution finer than
    // 2^-34 s are converted exactly here; libpcap 1.10 overflows 64 bits doing so.
    uint64_t time_units() const noexcept {
        return ng_ && last_iface_ < ifaces_.size() ? ifaces_[last_iface_].units_per_s : 0;
    }
    bool time_units_pow2() const noexcept { return ng_ && last_iface_ < ifaces_.size() && ifaces_[last_iface_].pow2; }
    uint64_t offset() const noexcept { return pos_; }
    size_t size() const noexcept { return size_; }

private:
    struct Iface {
        uint64_t units_per_s = 1'000'000;
        bool pow2 = false;
        int64_t offset_s = 0;
    };
    void open();
    bool next_pcap(Packet& p) noexcept;
    bool next_ng(Packet& p) noexcept;
    bool ng_block(uint32_t& type, uint32_t& len, const uint8_t*& body) noexcept;
    bool ng_shb(const uint8_t* body, uint32_t len, bool first) noexcept;
    bool ng_idb(const uint8_t* body, uint32_t len) noexcept;
    uint32_t u32(const uint8_t* p) const noexcept;
    uint16_t u16(const uint8_t* p) const noexcept;
    bool fail(const std::string& why) noexcept;
    void populate() noexcept;
    uint64_t to_ns(const Iface& i, uint64_t t) const noexcept;

    // Bytes [off, off + n) of the file, which must exist: where they are in memory, after making
    // sure a read file's window holds them (nullptr, with error() set, if it could not).
    const uint8_t* window(uint64_t off, uint64_t n) noexcept {
        if (!stream_) return base_ + off;
        if (off >= win_off_ && off + n <= win_off_ + win_len_) [[likely]]
            return cur_->data + (off - win_off_);
        return refill(off, n);
    }
    struct Chunk {
        uint8_t* data = nullptr;
        size_t cap = 0;
        std::atomic<int64_t> refs{0};  // 0: free; while read into, kHeld + holds - releases
        int64_t holds = 0;
        ~Chunk();
    };
    static constexpr int64_t kHeld = int64_t{1} << 50;
    const uint8_t* refill(uint64_t off, uint64_t n) noexcept;
    void drop_window() noexcept;  // the current buffer is left to its holders; unused ones freed

    const uint8_t* base_ = nullptr;
    bool stream_ = false;
    int fd_ = -1;
    size_t piece_ = 64u << 10;  // what a refill reads at least: small while the headers are read
    size_t big_piece_ = 4u << 20;
    std::vector<std::unique_ptr<Chunk>> chunks_;
    Chunk* cur_ = nullptr;
    uint64_t win_off_ = 0, win_len_ = 0;  // file bytes [win_off_, win_off_ + win_len_) in cur_
    size_t size_ = 0;
    bool mapped_ = false;
    bool swapped_ = false;
    bool ng_ = false;
    bool nsec_ = false;
    int lengths_swapped_ = 0;  // pcap before 2.3: 1 swapped, 2 maybe (2.3)
    int linktype_ = -1;
    uint32_t snapshot_ = 0;
    uint32_t max_block_ = 0;
    uint64_t start_ = 0;  // first packet record or block after the file header / first IDB
    uint64_t pos_ = 0;
    uint64_t populated_ = 0;     // page tables filled up to here (mapped files)
    uint64_t prefetched_ = 0;    // cache lines asked for up to here
    std::vector<Iface> ifaces_;  // of the section being read
    uint32_t last_iface_ = 0;    // of the last packet
    Iface first_iface_;          // the first section's first, for rewind()
    std::string error_;
};

// libpcap's mapping of a file's LINKTYPE_ value to the DLT_ value pcap_datalink() reports.
int linktype_to_dlt(uint32_t linktype) noexcept;
// The largest packet libpcap accepts for a link type (its max_snaplen_for_dlt).
uint32_t max_snaplen_for_dlt(int dlt) noexcept;

}  // namespace weir::capture
