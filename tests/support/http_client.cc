#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace eofaas::tests {

absl::StatusOr<HttpResponse> HttpRequest(const std::string& address, const std::string& method,
                                         const std::string& path, const std::string& body,
                                         int timeout_ms) {
  std::pair<std::string, std::string> host_port = absl::StrSplit(address, ':');
  int port = 0;
  if (!absl::SimpleAtoi(host_port.second, &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad address ", address));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host_port.first.c_str(), &addr.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", address, " failed"));
  }
  std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", address,
                                     "\r\nConnection: close\r\nContent-Type: application/json\r\n"
                                     "Content-Length: ",
                                     body.size(), "\r\n\r\n", body);
  // With a timeout set, a signal that merely wakes this thread (a child's SIGCHLD while another
  // thread blocks it) ends send and recv with EINTR instead of restarting them.
  ssize_t n;
  do {
    n = send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string raw;
  char buffer[65536];
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) raw.append(buffer, n);
  }
  close(fd);
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("incomplete response: ", raw));
  }
  HttpResponse response;
  std::vector<std::string> lines = absl::StrSplit(raw.substr(0, header_end), "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &response.status)) {
    return absl::UnavailableError(absl::StrCat("bad status line: ", lines[0]));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  response.body = raw.substr(header_end + 4);
  if (auto it = response.headers.find("content-length"); it != response.headers.end()) {
    size_t length = 0;
    if (absl::SimpleAtoi(it->second, &length) && response.body.size() > length) {
      response.body.resize(length);
    }
  }
  return response;
}

}  // namespace eofaas::tests
