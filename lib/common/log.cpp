// SPDX-License-Identifier: BSD-3-Clause
#include "common/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace weir::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::FILE* g_stream = stderr;
bool g_journal = false;
std::mutex g_mu;  // one line at a time from the control thread, the HTTP threads and DPDK

// JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected to the journal.
bool is_journal(std::FILE* f) {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js || !f) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

void write_line(Level l, const char* text, size_t n) {
    if (g_journal) std::fprintf(g_stream, "<%d>", static_cast<int>(l));
    std::fwrite(text, 1, n, g_stream);
    if (n == 0 || text[n - 1] != '\n') std::fputc('\n', g_stream);
}

}  // namespace

void init() {
    std::lock_guard<std::mutex> lock(g_mu);
    g_journal = is_journal(g_stream);
}

void set_level(Level l) { g_level = static_cast<int>(l); }
Level level() { return static_cast<Level>(g_level.load()); }

bool parse_level(const std::string& name, Level& out) {
    static const std::pair<const char*, Level> names[] = {{"error", Level::kError},
                                                          {"warning", Level::kWarning},
                                                          {"notice", Level::kNotice},
                                                          {"info", Level::kInfo},
                                                          {"debug", Level::kDebug}};
    for (const auto& [n, l] : names)
        if (name == n) {
            out = l;
            return true;
        }
    return false;
}

const char* level_name(Level l) {
    switch (l) {
        case Level::kError: return "error";
        case Level::kWarning: return "warning";
        case Level::kNotice: return "notice";
        case Level::kInfo: return "info";
        case Level::kDebug: return "debug";
    }
    return "?";
}

void set_stream(std::FILE* f) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_stream = f;
    g_journal = is_journal(f);
}

bool to_journal() { return g_journal; }

void vsay(Level l, const char* fmt, va_list ap) {
    if (static_cast<int>(l) > g_level.load()) return;
    char buf[2048];
    const int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
    if (n < 0) return;
    std::lock_guard<std::mutex> lock(g_mu);
    write_line(l, buf, std::min(static_cast<size_t>(n), sizeof(buf) - 1));
    std::fflush(g_stream);
}

void say(Level l, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay(l, fmt, ap);
    va_end(ap);
}

void raw(Level l, const char* text, size_t n) {  // already filtered by its source
    std::lock_guard<std::mutex> lock(g_mu);
    size_t pos = 0;
    while (pos < n) {
        const char* nl = static_cast<const char*>(std::memchr(text + pos, '\n', n - pos));
        const size_t end = nl ? static_cast<size_t>(nl - text) + 1 : n;
        write_line(l, text + pos, end - pos);
        pos = end;
    }
    std::fflush(g_stream);
}

}  // namespace weir::log
