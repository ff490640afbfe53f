#include "control/deploy/health_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace eofaas::control {
namespace {

// Closes the socket on every return path.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Milliseconds left before `deadline`, rounded up (a wait never ends before it), at least 0.
int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on `fd` until `deadline`; OK when ready.
absl::Status WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline,
                     absl::string_view what) {
  for (;;) {
    pollfd pfd{fd, events, 0};
    int ready = poll(&pfd, 1, RemainingMs(deadline));
    if (ready > 0) return absl::OkStatus();
    if (ready == 0) {
      if (std::chrono::steady_clock::now() < deadline) continue;  // woken a little early
      return absl::DeadlineExceededError(absl::StrCat("healthz: ", what, " timed out"));
    }
    if (errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("healthz: poll: ", strerror(errno)));
    }
  }
}

}  // namespace

absl::StatusOr<int> ProbeHealth(int port, std::chrono::milliseconds timeout) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  const auto connect_deadline = start + timeout / 2;
  Socket socket_fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (socket_fd.fd() < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  const int fd = socket_fd.fd();

  sockaddr_in address = Loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(absl::StrCat("healthz: connect: ", strerror(errno)));
    }
    if (auto status = WaitFor(fd, POLLOUT, connect_deadline, "connect"); !status.ok()) {
      return status;
    }
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      return absl::UnavailableError(absl::StrCat("healthz: connect: ", strerror(error)));
    }
  }

  static constexpr absl::string_view kRequest =
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  // A fresh socket has room for a request this small: one send does it.
  if (send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kRequest.size())) {
    return absl::UnavailableError(absl::StrCat("healthz: send: ", strerror(errno)));
  }

  // Only the status line matters: "HTTP/1.x NNN ...".
  std::string response;
  char buffer[256];
  while (response.find("\r\n") == std::string::npos && response.size() < 1024) {
    if (auto status = WaitFor(fd, POLLIN, deadline, "read"); !status.ok()) return status;
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      response.append(buffer, n);
    } else if (n == 0) {
      break;
    } else if (errno != EINTR && errno != EAGAIN) {
      return absl::UnavailableError(absl::StrCat("healthz: recv: ", strerror(errno)));
    }
  }
  if (response.empty()) return absl::UnavailableError("healthz: connection closed without answer");
  int code = 0;
  absl::string_view line(response);
  if (!absl::StartsWith(line, "HTTP/1.") || line.size() < 12 ||
      !absl::SimpleAtoi(line.substr(9, 3), &code)) {
    return absl::InternalError(
        absl::StrCat("healthz: malformed status line: ", line.substr(0, line.find('\r'))));
  }
  return code;
}

absl::StatusOr<int> ReserveLoopbackPort() {
  Socket socket_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (socket_fd.fd() < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in address = Loopback(0);
  if (bind(socket_fd.fd(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", strerror(errno)));
  }
  socklen_t length = sizeof(address);
  if (getsockname(socket_fd.fd(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", strerror(errno)));
  }
  return ntohs(address.sin_port);
}

}  // namespace eofaas::control
