// SPDX-License-Identifier: BSD-3-Clause
// Selective capture's files: packets of the flows a capture rule chose, written as pcapng with a
// comment per packet (its flow and the rule), into a folder of files that rotate by size and age
// under a total disk budget (the oldest files of weir's go first). Files are created 0600.
// Control side only (a thread of its own): no DPDK here, so it is unit-tested on plain bytes.
//
// DPDK 22.11's librte_pcapng (Debian 12) writes no per-packet comment and stamps packets with
// the TSC, not with the packet times weir keeps (a replay's own); this writer does both.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

namespace weir::capture {

struct WriterConfig {
    std::string dir;                     // created if missing (0700)
    uint64_t file_bytes = 64 << 20;      // rotate at this size
    uint32_t file_s = 300;               // ... or this age (0: never by age)
    uint64_t budget_bytes = 1ull << 30;  // all of weir's capture files together
};

struct WriterStats {
    uint64_t packets = 0;       // written
    uint64_t bytes = 0;         // written to files (blocks), all files since start
    uint64_t files = 0;         // opened
    uint64_t deleted = 0;       // removed to stay within the budget
    uint64_t budget_drops = 0;  // packets not written: the budget cannot hold even the file in use
    uint64_t write_errors = 0;  // packets lost to a failed open or write
    uint64_t on_disk = 0;       // bytes in weir's capture files now (a gauge)
};

class PcapngWriter {
public:
    // Throws std::runtime_error when the folder cannot be made or read.
    explicit PcapngWriter(WriterConfig cfg);
    ~PcapngWriter();
    PcapngWriter(const PcapngWriter&) = delete;
    PcapngWriter& operator=(const PcapngWriter&) = delete;

    // One packet: its time (ns since the epoch), link type (DLT/LINKTYPE), bytes captured and its
    // length on the wire, and the comment to carry. `now_s` drives rotation by age.
    void write(uint64_t ts_ns, uint16_t linktype, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
               const std::string& comment, uint64_t now_s);
    void flush();  // to the kernel
    void close();  // the file in use (a new one opens with the next packet)

    const WriterStats& stats() const noexcept { return stats_; }
    const std::string& current_path() const noexcept { return path_; }

private:
    bool open_file(uint64_t now_s);
    void enforce_budget(uint64_t incoming);
    bool put(const std::string& block);

    WriterConfig cfg_;
    int fd_ = -1;
    std::string path_;
    uint64_t file_size_ = 0;
    uint64_t opened_s_ = 0;
    uint32_t seq_ = 0;
    std::map<uint16_t, uint32_t> ifaces_;                 // link type -> interface id in the file in use
    std::deque<std::pair<std::string, uint64_t>> files_;  // weir's closed files, oldest first, with sizes
    WriterStats stats_;
    std::string buf_;  // blocks waiting for write(2)
};

// The blocks, for tests and the writer: section header, interface description (ns timestamps,
// snaplen), enhanced packet block with an opt_comment.
std::string section_header_block();
std::string interface_block(uint16_t linktype, uint32_t snaplen);
std::string packet_block(uint32_t iface, uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
                         const std::string& comment);

}  // namespace weir::capture
