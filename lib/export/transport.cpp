#include "export/transport.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace weir::exporter {
namespace {

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
    ~UdpTransport() override { close(fd_); }

    bool send(const uint8_t* p, size_t n, uint32_t) override {
        const ssize_t rc = ::send(fd_, p, n, 0);
        if (rc == static_cast<ssize_t>(n)) return true;
        // ECONNREFUSED: an earlier datagram drew ICMP port unreachable; this call sent nothing.
        errno_ = rc < 0 ? errno : EMSGSIZE;
        return false;
    }
    size_t max_message() const override { return max_; }

private:
    int fd_ = -1;
    size_t max_;
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

    bool send(const uint8_t* p, size_t n, uint32_t now_s) override {
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

}  // namespace

std::unique_ptr<Transport> make_transport(const config::Exporter& ex, const config::Config& cfg) {
    if (ex.scheme == "file") return std::make_unique<FileTransport>(ex, cfg);
    return std::make_unique<UdpTransport>(ex, cfg);
}

}  // namespace weir::exporter
