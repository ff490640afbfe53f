// A replica for benchmarks: speaks the replica protocol (GET /healthz, POST /invoke) with as
// little work per request as possible, so that what a benchmark measures is whatever stands in
// front of it. Every /invoke answers 200 "ok" without reading the envelope. One thread, level-
// triggered epoll, keep-alive HTTP/1.1 with pipelining; bodies framed by Content-Length only.
//
// Usage: echo_replica --listen 127.0.0.1:PORT   (port 0 picks one; the address is printed as
// "listening on 127.0.0.1:N"). SIGTERM or SIGINT: exit 0 (nothing outlives a request).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/options.h"

namespace eofaas::bench {
namespace {

constexpr size_t kMaxHeaderBytes = 16 << 10;
constexpr size_t kMaxBodyBytes = 1 << 20;

constexpr std::string_view kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
constexpr std::string_view kNotFound =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found";
// Answers after which the connection is closed.
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
constexpr std::string_view kTooLarge =
    "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
constexpr std::string_view kHeadTooLarge =
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "Connection: close\r\nContent-Length: 0\r\n\r\n";
constexpr std::string_view kNotImplemented =
    "HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

struct Connection {
  int fd;
  std::string in;        // bytes read and not yet parsed
  std::string out;       // bytes to write
  bool closing = false;  // close once `out` is written
  bool writing = false;  // waiting for EPOLLOUT
};

// What one request head says; `bad` when it cannot be framed. HTTP/1.0 requests are answered,
// then the connection is closed.
struct Request {
  absl::string_view method;
  absl::string_view target;
  size_t content_length = 0;
  bool close = false;
  bool chunked = false;
  bool bad = false;
};

Request ParseHead(absl::string_view head) {
  Request request;
  size_t line_end = head.find("\r\n");
  absl::string_view line = head.substr(0, line_end);
  const size_t space1 = line.find(' ');
  const size_t space2 = line.rfind(' ');
  if (space1 == absl::string_view::npos || space2 == space1) {
    request.bad = true;
    return request;
  }
  request.method = line.substr(0, space1);
  request.target = line.substr(space1 + 1, space2 - space1 - 1);
  request.close = line.substr(space2 + 1) == "HTTP/1.0";
  while (line_end != absl::string_view::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    line = head.substr(start, line_end == absl::string_view::npos ? line_end : line_end - start);
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view name = line.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "content-length")) {
      auto [end, error] =
          std::from_chars(value.data(), value.data() + value.size(), request.content_length);
      request.bad |= error != std::errc() || end != value.data() + value.size();
    } else if (absl::EqualsIgnoreCase(name, "connection")) {
      request.close |= absl::EqualsIgnoreCase(value, "close");
    } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      request.chunked = true;
    }
  }
  return request;
}

// Answers every complete request in `c.in` (pipelined ones together), leaving a partial one.
void Serve(Connection& c) {
  size_t pos = 0;
  while (!c.closing) {
    const size_t head_end = c.in.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) {
      if (c.in.size() - pos > kMaxHeaderBytes) {
        c.out.append(kHeadTooLarge);
        c.closing = true;
      }
      break;
    }
    const Request request = ParseHead(absl::string_view(c.in).substr(pos, head_end - pos));
    if (request.bad || request.chunked || request.content_length > kMaxBodyBytes) {
      c.out.append(request.bad ? kBadRequest : request.chunked ? kNotImplemented : kTooLarge);
      c.closing = true;
      break;
    }
    const size_t end = head_end + 4 + request.content_length;
    if (c.in.size() < end) break;  // the body is still coming
    const bool known = (request.method == "POST" && request.target == "/invoke") ||
                       (request.method == "GET" && request.target == "/healthz");
    c.out.append(known ? kOk : kNotFound);
    c.closing = request.close;
    pos = end;
  }
  c.in.erase(0, pos);
}

// The event loop. Epoll events carry a Connection*, or the address of `listener_` or
// `signals_`.
class Server {
 public:
  Server(int listener, int signals)
      : epoll_(epoll_create1(EPOLL_CLOEXEC)), listener_(listener), signals_(signals) {
    epoll_event event{.events = EPOLLIN, .data = {.ptr = &listener_}};
    epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &event);
    event.data.ptr = &signals_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, signals_, &event);
  }

  /// Runs until SIGTERM or SIGINT.
  void Run() {
    epoll_event events[256];
    for (;;) {
      const int n = epoll_wait(epoll_, events, 256, -1);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.ptr == &listener_) {
          Accept();
        } else if (events[i].data.ptr == &signals_) {
          return;
        } else {
          Handle(*static_cast<Connection*>(events[i].data.ptr), events[i].events);
        }
      }
    }
  }

 private:
  void Accept() {
    for (;;) {
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a connection reset before it was accepted
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto* c = new Connection{.fd = fd};
      epoll_event event{.events = EPOLLIN | EPOLLRDHUP, .data = {.ptr = c}};
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
    }
  }

  void Handle(Connection& c, uint32_t events) {
    if (events & EPOLLIN) {
      char buffer[64 << 10];
      const ssize_t n = read(c.fd, buffer, sizeof(buffer));
      if (n == 0 || (n < 0 && errno != EAGAIN)) return Close(c);
      if (n > 0) {
        c.in.append(buffer, n);
        Serve(c);
      }
    } else if (!(events & EPOLLOUT)) {
      return Close(c);  // EPOLLERR or EPOLLHUP
    }
    Flush(c);
  }

  // Writes what it can. While a response is unsent the connection waits for EPOLLOUT and reads
  // nothing more (a client that does not read its answers stops being served).
  void Flush(Connection& c) {
    while (!c.out.empty()) {
      const ssize_t n = write(c.fd, c.out.data(), c.out.size());
      if (n < 0) {
        if (errno == EAGAIN) break;
        return Close(c);
      }
      c.out.erase(0, n);
    }
    if (c.out.empty() && c.closing) return Close(c);
    const bool writing = !c.out.empty();
    if (writing == c.writing) return;
    c.writing = writing;
    epoll_event event{.events = writing ? uint32_t{EPOLLOUT} : uint32_t{EPOLLIN | EPOLLRDHUP},
                      .data = {.ptr = &c}};
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &event);
  }

  static void Close(Connection& c) {
    close(c.fd);  // also leaves the epoll set
    delete &c;
  }

  const int epoll_;
  int listener_;
  int signals_;
};

absl::Status Run(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  common::Options options(
      "echo_replica: a replica for benchmarks; POST /invoke answers 200 \"ok\" at once.");
  options.AddString("listen", "IPv4 listen address (host:port; port 0 picks one)", &listen);
  if (auto status = options.Parse(argc, argv); !status.ok()) return status;
  if (options.help_requested()) {
    std::cout << options.Usage();
    return absl::OkStatus();
  }
  const size_t colon = listen.rfind(':');
  const std::string host = listen.substr(0, colon);
  const std::string port_text = colon == std::string::npos ? "" : listen.substr(colon + 1);
  sockaddr_in address{.sin_family = AF_INET};
  uint16_t port = 0;
  auto [port_end, port_error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1 || port_error != std::errc() ||
      port_end != port_text.data() + port_text.size()) {
    return absl::InvalidArgumentError(absl::StrCat("listen: not an IPv4 host:port: ", listen));
  }
  address.sin_port = htons(port);

  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t length = sizeof(address);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener, SOMAXCONN) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return absl::UnavailableError(absl::StrCat("listen: ", listen, ": ", std::strerror(errno)));
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Server server(listener, signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  std::printf("listening on %s:%d\n", host.c_str(), ntohs(address.sin_port));
  std::fflush(stdout);
  server.Run();
  return absl::OkStatus();
}

}  // namespace
}  // namespace eofaas::bench

int main(int argc, char** argv) {
  absl::Status status = eofaas::bench::Run(argc, argv);
  if (!status.ok()) {
    std::fprintf(stderr, "echo_replica: %s\n", status.ToString().c_str());
    return absl::IsInvalidArgument(status) ? 2 : 1;
  }
  return 0;
}
