// SPDX-License-Identifier: BSD-3-Clause
#include "export/transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <vector>

namespace weir::exporter {
namespace {

// Before connect(): the source address and the DSCP an exporter asks for. Throws naming the
// setting and the reason.
void prepare_socket(int fd, int family, const config::Exporter& ex) {
    if (!ex.source.empty()) {
        addrinfo hints{};
        hints.ai_family = family;
        hints.ai_flags = AI_NUMERICHOST;
        addrinfo* res = nullptr;
        if (getaddrinfo(ex.source.c_str(), nullptr, &hints, &res) != 0 || !res)
            throw std::runtime_error(ex.url + ": source " + ex.source + " is not an " +
                                     (family == AF_INET ? "IPv4" : "IPv6") + " address, as the collector's is");
        const int rc = bind(fd, res->ai_addr, res->ai_addrlen);
        const int err = errno;
        freeaddrinfo(res);
        if (rc != 0) throw std::runtime_error(ex.url + ": cannot send from " + ex.source + ": " + std::strerror(err));
    }
    if (ex.dscp >= 0) {
        const int tos = ex.dscp << 2;
        const int rc = family == AF_INET ? setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos))
                                         : setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
        if (rc != 0)
            throw std::runtime_error(ex.url + ": cannot set DSCP " + std::to_string(ex.dscp) + ": " +
                                     std::strerror(errno));
    }
}

class UdpTransport : public Transport {
public:
    UdpTransport(const config::Exporter& ex, const config::Config& cfg) : max_(cfg.mtu - 48) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_DGRAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo* res = nullptr;
        const std::string port = std::to_string(ex.port);
        if (int rc = getaddrinfo(ex.host.c_str(), port.c_str(), &hints, &res); rc != 0)
            throw std::runtime_error(ex.url + ": cannot resolve " + ex.host + ": " + gai_strerror(rc));
        std::string why;
        for (addrinfo* a = res; a; a = a->ai_next) {
            const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
            if (fd < 0) {
                why = std::strerror(errno);
                continue;
            }
            try {
                prepare_socket(fd, a->ai_family, ex);
            } catch (...) {
                close(fd);
                freeaddrinfo(res);
                throw;
            }
            // connect() so an unreachable collector (ICMP port unreachable) shows up as a send
            // error we can count, instead of silence.
            if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
                fd_ = fd;
                break;
            }
            why = std::strerror(errno);
            close(fd);
        }
        freeaddrinfo(res);
        if (fd_ < 0) throw std::runtime_error(ex.url + ": " + why);
        const int sndbuf = 8 << 20;
        setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    ~UdpTransport() override {
        flush();
        close(fd_);
    }

    void batch() override {
        if (!slots_.empty()) return;
        slots_.resize(kBatch * max_);
        for (unsigned i = 0; i < kBatch; ++i) {
            msgs_[i] = mmsghdr{};
            msgs_[i].msg_hdr.msg_iov = &iov_[i];
            msgs_[i].msg_hdr.msg_iovlen = 1;
        }
    }

    bool batching() const override { return !slots_.empty(); }

    bool send(const uint8_t* p, size_t n, uint32_t, uint64_t records, uint64_t packets) override {
        if (slots_.empty() || n > max_) {
            flush();  // in order
            return send_now(p, n);
        }
        if (queued_ == kBatch) flush();
        uint8_t* slot = slots_.data() + queued_ * max_;
        std::memcpy(slot, p, n);
        iov_[queued_] = iovec{slot, n};
        records_[queued_] = records;
        packets_[queued_] = packets;
        ++queued_;
        return true;
    }

    void flush() override {
        unsigned i = 0, refusals = 0;
        while (i < queued_) {
            const int rc = sendmmsg(fd_, &msgs_[i], queued_ - i, 0);
            if (rc > 0) {
                lost_.sent += static_cast<unsigned>(rc);
                i += static_cast<unsigned>(rc);
                refusals = 0;
                continue;
            }
            const int err = errno;
            if (err == EINTR) continue;
            if (err == ECONNREFUSED && refusals < 2) {  // as in send_now: reported, and sent anyway
                refused_ = true;
                ++refusals;
                continue;
            }
            // Message i cannot go: it is lost, the next ones are tried.
            lost_.records += records_[i];
            lost_.packets += packets_[i];
            ++lost_.messages;
            ++lost_.failed;
            lost_.err = err;
            errno_ = err;
            ++i;
            refusals = 0;
        }
        queued_ = 0;
    }

    Lost take_lost() override {
        const Lost l = lost_;
        lost_ = Lost{};
        return l;
    }

    bool send_now(const uint8_t* p, size_t n) {
        ssize_t rc = ::send(fd_, p, n, 0);
        if (rc < 0 && errno == ECONNREFUSED) {
            // An earlier datagram drew an ICMP port unreachable, which this call reported instead
            // of sending. Say so, and send this one anyway: the collector may be back.
            refused_ = true;
            rc = ::send(fd_, p, n, 0);
            if (rc < 0 && errno == ECONNREFUSED) rc = ::send(fd_, p, n, 0);
        }
        if (rc == static_cast<ssize_t>(n)) return true;
        errno_ = rc < 0 ? errno : EMSGSIZE;
        return false;
    }
    size_t max_message() const override { return max_; }
    bool take_refused() override {
        const bool r = refused_;
        refused_ = false;
        return r;
    }

private:
    static constexpr unsigned kBatch = 64;  // messages per sendmmsg at most
    int fd_ = -1;
    bool refused_ = false;
    size_t max_;
    // Batching: the queued messages' copies, their headers, and what each carries.
    std::vector<uint8_t> slots_;
    std::array<mmsghdr, kBatch> msgs_{};
    std::array<iovec, kBatch> iov_{};
    std::array<uint64_t, kBatch> records_{}, packets_{};
    unsigned queued_ = 0;
    Lost lost_;
};

// Appends messages to PATH; when it reaches rotate_bytes or rotate_s, renames it to
// PATH.YYYYmmddTHHMMSSZ (plus .N if that exists) and starts a new PATH.
class FileTransport : public Transport {
public:
    FileTransport(const config::Exporter& ex, const config::Config&)
        : path_(ex.path), rotate_bytes_(static_cast<uint64_t>(ex.rotate_mb * (1 << 20))), rotate_s_(ex.rotate_s) {
        open_file(static_cast<uint32_t>(std::time(nullptr)));
        if (fd_ < 0) throw std::runtime_error(ex.url + ": cannot open " + path_ + ": " + std::strerror(errno));
    }
    ~FileTransport() override {
        if (fd_ >= 0) close(fd_);
    }

    void prepare(size_t n, uint32_t now_s) override {
        if (fd_ >= 0 && size_ > 0 &&
            ((rotate_bytes_ && size_ + n > rotate_bytes_) || (rotate_s_ && now_s - opened_s_ >= rotate_s_)))
            rotate(now_s);
    }

    bool send(const uint8_t* p, size_t n, uint32_t now_s, uint64_t, uint64_t) override {
        if (fd_ < 0) {
            open_file(now_s);
            if (fd_ < 0) return false;
        }
        size_t done = 0;
        while (done < n) {
            const ssize_t rc = ::write(fd_, p + done, n - done);
            if (rc < 0 && errno == EINTR) continue;
            if (rc <= 0) {
                errno_ = rc < 0 ? errno : EIO;
                // Keep the file whole: cut off a partial message.
                if (done && ftruncate(fd_, static_cast<off_t>(size_)) != 0) errno_ = errno;
                return false;
            }
            done += static_cast<size_t>(rc);
        }
        size_ += n;
        return true;
    }
    uint64_t generation() const override { return generation_; }
    size_t max_message() const override { return 16384; }

private:
    void open_file(uint32_t now_s) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            errno_ = errno;
            return;
        }
        const off_t end = lseek(fd_, 0, SEEK_END);
        size_ = end > 0 ? static_cast<uint64_t>(end) : 0;
        opened_s_ = now_s;
        ++generation_;  // a new file must start with templates
    }
    void rotate(uint32_t now_s) {
        close(fd_);
        fd_ = -1;
        char stamp[32];
        const time_t t = now_s;
        tm utc;
        gmtime_r(&t, &utc);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
        std::string dest = path_ + "." + stamp;
        for (int i = 1; access(dest.c_str(), F_OK) == 0; ++i) dest = path_ + "." + stamp + "." + std::to_string(i);
        if (::rename(path_.c_str(), dest.c_str()) != 0) errno_ = errno;
        open_file(now_s);
    }

    std::string path_;
    uint64_t rotate_bytes_;
    uint32_t rotate_s_;
    int fd_ = -1;
    uint64_t size_ = 0;
    uint32_t opened_s_ = 0;
    uint64_t generation_ = 0;
};

// A TCP connection to the collector. Messages go into a bounded queue and out with
// non-blocking writes; the control thread never waits. A collector that closed the connection
// is noticed before the next write (peek for EOF), so no message goes into a dead socket
// unnoticed. Disconnected: messages are refused (counted lost by the exporter) and the
// connection is retried with backoff (0.5 s doubling to 30 s). A message cut by a broken
// connection, and those queued behind it, are reported through take_lost().
class TcpTransport : public Transport {
public:
    TcpTransport(const config::Exporter& ex, const config::Config&)
        : ex_(ex),
          url_(ex.url),
          host_(ex.host),
          port_(ex.port),
          queue_limit_(static_cast<size_t>(ex.queue_mb * (1 << 20))) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo* res = nullptr;
        const std::string port = std::to_string(port_);
        if (int rc = getaddrinfo(host_.c_str(), port.c_str(), &hints, &res); rc != 0 || !res)
            throw std::runtime_error(url_ + ": cannot resolve " + host_ + ": " + gai_strerror(rc));
        std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
        addrlen_ = res->ai_addrlen;
        family_ = res->ai_family;
        freeaddrinfo(res);
        {
            // A source or DSCP that cannot be had is a configuration error, found now, not at
            // every reconnection.
            const int probe = socket(family_, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (probe >= 0) {
                try {
                    prepare_socket(probe, family_, ex_);
                } catch (...) {
                    close(probe);
                    throw;
                }
                close(probe);
            }
        }
        try_connect(0);
    }
    ~TcpTransport() override {
        if (fd_ >= 0) {
            flush_blocking_briefly();
            close(fd_);
        }
    }

    void prepare(size_t, uint32_t now_s) override {
        if (fd_ >= 0) check_peer();
        if (fd_ < 0 && now_ms() >= next_try_ms_) try_connect(now_s);
        pump();
    }

    bool send(const uint8_t* p, size_t n, uint32_t, uint64_t records, uint64_t packets) override {
        if (fd_ < 0 || connecting_) {
            errno_ = fd_ < 0 ? ENOTCONN : EINPROGRESS;
            return false;
        }
        if (queue_.size() - head_ + n > queue_limit_) {
            errno_ = ENOBUFS;  // collector too slow: refuse rather than grow or block
            return false;
        }
        queue_.insert(queue_.end(), p, p + n);
        metas_.push_back(Meta{queue_.size(), records, packets});
        pump();
        return true;
    }
    uint64_t generation() const override { return generation_; }
    bool new_session_per_generation() const override { return true; }
    size_t max_message() const override { return 65000; }
    Lost take_lost() override {
        Lost l = lost_;
        lost_ = {};
        return l;
    }
    uint64_t reconnects() const override { return reconnects_; }

private:
    struct Meta {
        size_t end;  // offset in queue_ just past the message
        uint64_t records, packets;
    };
    static uint64_t now_ms() {
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
    }
    void try_connect(uint32_t) {
        fd_ = socket(family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return fail(errno);
        try {
            prepare_socket(fd_, family_, ex_);
        } catch (const std::exception&) {
            return fail(errno ? errno : EADDRNOTAVAIL);
        }
        const int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr_), addrlen_);
        if (rc != 0 && errno != EINPROGRESS) return fail(errno);
        connecting_ = rc != 0;
        if (!connecting_) connected();
    }
    void connected() {
        connecting_ = false;
        backoff_ms_ = 500;
        ++generation_;  // a new session: templates first, sequence from 0
        if (generation_ > 1) ++reconnects_;
    }
    void fail(int err) {
        errno_ = err;
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
        connecting_ = false;
        // Whatever was queued never reaches the collector whole.
        for (const Meta& m : metas_) {
            lost_.records += m.records;
            lost_.packets += m.packets;
            ++lost_.messages;
        }
        metas_.clear();
        queue_.clear();
        head_ = 0;
        next_try_ms_ = now_ms() + backoff_ms_;
        backoff_ms_ = backoff_ms_ * 2 > 30000 ? 30000 : backoff_ms_ * 2;
    }
    void check_peer() {
        if (connecting_) {
            pollfd p{fd_, POLLOUT, 0};
            if (poll(&p, 1, 0) <= 0) return;
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) return fail(err);
            connected();
        }
        char c;
        const ssize_t rc = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (rc == 0) return fail(ECONNRESET);  // the collector closed the connection
        if (rc < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return fail(errno);
    }
    void pump() {
        while (fd_ >= 0 && !connecting_ && head_ < queue_.size()) {
            const ssize_t rc = ::send(fd_, queue_.data() + head_, queue_.size() - head_, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (rc < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                return fail(errno);
            }
            head_ += static_cast<size_t>(rc);
        }
        size_t done = 0;
        while (done < metas_.size() && metas_[done].end <= head_) ++done;
        metas_.erase(metas_.begin(), metas_.begin() + static_cast<long>(done));
        if (head_ == queue_.size()) {
            queue_.clear();
            head_ = 0;
        } else if (head_ > (1u << 20)) {
            queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(head_));
            for (Meta& m : metas_) m.end -= head_;
            head_ = 0;
        }
    }
    // At shutdown: give a slow collector up to 2 s for what is queued.
    void flush_blocking_briefly() {
        const uint64_t until = now_ms() + 2000;
        while (fd_ >= 0 && head_ < queue_.size() && now_ms() < until) {
            pollfd p{fd_, POLLOUT, 100};
            poll(&p, 1, 100);
            pump();
        }
    }

    config::Exporter ex_;
    std::string url_, host_;
    uint16_t port_;
    size_t queue_limit_;
    sockaddr_storage addr_{};
    socklen_t addrlen_ = 0;
    int family_ = AF_INET;
    int fd_ = -1;
    bool connecting_ = false;
    std::vector<uint8_t> queue_;
    size_t head_ = 0;
    std::vector<Meta> metas_;
    Lost lost_;
    uint64_t generation_ = 0, reconnects_ = 0;
    uint64_t next_try_ms_ = 0, backoff_ms_ = 500;
};

}  // namespace

std::unique_ptr<Transport> make_transport(const config::Exporter& ex, const config::Config& cfg) {
    if (ex.scheme == config::Scheme::kFile) return std::make_unique<FileTransport>(ex, cfg);
    if (ex.scheme == config::Scheme::kTcp) return std::make_unique<TcpTransport>(ex, cfg);
    return std::make_unique<UdpTransport>(ex, cfg);
}

}  // namespace weir::exporter
