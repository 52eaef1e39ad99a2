// SPDX-License-Identifier: BSD-3-Clause
#include "capture/pcapng.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <vector>

namespace weir::capture {
namespace {

void u16(std::string& b, uint16_t v) { b.append(reinterpret_cast<const char*>(&v), 2); }
void u32(std::string& b, uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); }
void pad4(std::string& b) {
    while (b.size() % 4) b.push_back('\0');
}
// Closes a block: total length at offset 4 and at the end.
std::string finish(std::string b) {
    pad4(b);
    const uint32_t total = static_cast<uint32_t>(b.size() + 4);
    std::memcpy(&b[4], &total, 4);
    u32(b, total);
    return b;
}
void option(std::string& b, uint16_t code, const std::string& value) {
    u16(b, code);
    u16(b, static_cast<uint16_t>(value.size()));
    b += value;
    pad4(b);
}

bool ours(const std::string& name) {
    return name.rfind("weir-", 0) == 0 && name.size() > 12 && name.compare(name.size() - 7, 7, ".pcapng") == 0;
}

}  // namespace

std::string section_header_block() {
    std::string b;
    u32(b, 0x0A0D0D0A);
    u32(b, 0);
    u32(b, 0x1A2B3C4D);
    u16(b, 1);
    u16(b, 0);
    b.append(8, '\xff');   // section length unknown
    option(b, 4, "weir");  // shb_userappl
    u32(b, 0);             // opt_endofopt
    return finish(b);
}

std::string interface_block(uint16_t linktype, uint32_t snaplen) {
    std::string b;
    u32(b, 1);
    u32(b, 0);
    u16(b, linktype);
    u16(b, 0);
    u32(b, snaplen);
    option(b, 9, std::string(1, '\x09'));  // if_tsresol: 10^-9 s
    u32(b, 0);
    return finish(b);
}

std::string packet_block(uint32_t iface, uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
                         const std::string& comment) {
    std::string b;
    b.reserve(48 + caplen + comment.size());
    u32(b, 6);
    u32(b, 0);
    u32(b, iface);
    u32(b, static_cast<uint32_t>(ts_ns >> 32));
    u32(b, static_cast<uint32_t>(ts_ns));
    u32(b, caplen);
    u32(b, wirelen);
    b.append(reinterpret_cast<const char*>(data), caplen);
    pad4(b);
    if (!comment.empty()) {
        option(b, 1, comment.substr(0, 65000));  // opt_comment
        u32(b, 0);
    }
    return finish(b);
}

PcapngWriter::PcapngWriter(WriterConfig cfg) : cfg_(std::move(cfg)) {
    if (mkdir(cfg_.dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw std::runtime_error("capture.dir " + cfg_.dir + ": cannot create: " + std::strerror(errno));
    DIR* d = opendir(cfg_.dir.c_str());
    if (!d) throw std::runtime_error("capture.dir " + cfg_.dir + ": cannot read: " + std::strerror(errno));
    // weir's files from before count against the budget: oldest (by name, which is by time) first.
    std::vector<std::pair<std::string, uint64_t>> found;
    while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (!ours(name)) continue;
        struct stat st;
        const std::string p = cfg_.dir + "/" + name;
        if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) found.emplace_back(p, static_cast<uint64_t>(st.st_size));
    }
    closedir(d);
    std::sort(found.begin(), found.end());
    for (auto& f : found) {
        stats_.on_disk += f.second;
        files_.push_back(std::move(f));
    }
}

PcapngWriter::~PcapngWriter() { close(); }

void PcapngWriter::close() {
    if (fd_ < 0) return;
    flush();
    ::close(fd_);
    fd_ = -1;
    files_.emplace_back(path_, file_size_);
    ifaces_.clear();
}

void PcapngWriter::flush() {
    if (fd_ < 0 || buf_.empty()) return;
    size_t done = 0;
    while (done < buf_.size()) {
        const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ++stats_.write_errors;
            break;
        }
        done += static_cast<size_t>(n);
    }
    buf_.clear();
}

bool PcapngWriter::put(const std::string& block) {
    buf_ += block;
    file_size_ += block.size();
    stats_.bytes += block.size();
    stats_.on_disk += block.size();
    if (buf_.size() >= (1u << 20)) flush();
    return true;
}

void PcapngWriter::enforce_budget(uint64_t incoming) {
    while (stats_.on_disk + incoming > cfg_.budget_bytes && !files_.empty()) {
        const auto [path, size] = files_.front();
        files_.pop_front();
        if (::unlink(path.c_str()) == 0 || errno == ENOENT) {
            stats_.on_disk -= std::min(stats_.on_disk, size);
            ++stats_.deleted;
        }
    }
}

bool PcapngWriter::open_file(uint64_t now_s) {
    const time_t t = static_cast<time_t>(now_s);
    tm utc;
    gmtime_r(&t, &utc);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
    path_ = cfg_.dir + "/weir-" + stamp + "-" + std::to_string(seq_++) + ".pcapng";
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) return false;
    ++stats_.files;
    file_size_ = 0;
    opened_s_ = now_s;
    put(section_header_block());
    return true;
}

void PcapngWriter::write(uint64_t ts_ns, uint16_t linktype, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
                         const std::string& comment, uint64_t now_s) {
    if (fd_ >= 0 && (file_size_ >= cfg_.file_bytes || (cfg_.file_s && now_s >= opened_s_ + cfg_.file_s))) close();
    const std::string block = packet_block(0, ts_ns, data, caplen, wirelen, comment);
    enforce_budget(block.size() + (fd_ < 0 ? 64 : 0));
    if (stats_.on_disk + block.size() > cfg_.budget_bytes) {
        ++stats_.budget_drops;  // the file in use alone fills the budget: start another next time
        if (fd_ >= 0 && file_size_ > 0) close();
        return;
    }
    if (fd_ < 0 && !open_file(now_s)) {
        ++stats_.write_errors;
        return;
    }
    auto it = ifaces_.find(linktype);
    if (it == ifaces_.end()) {
        it = ifaces_.emplace(linktype, static_cast<uint32_t>(ifaces_.size())).first;
        put(interface_block(linktype, 65535));
    }
    if (it->second == 0) {
        put(block);
    } else {
        put(packet_block(it->second, ts_ns, data, caplen, wirelen, comment));
    }
    ++stats_.packets;
}

}  // namespace weir::capture
