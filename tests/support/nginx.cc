#include "tests/support/nginx.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/subprocess.h"
#include "tests/support/http_client.h"

namespace eofaas::tests {
namespace {

namespace fs = std::filesystem;

constexpr char kNginxBinary[] = "/usr/sbin/nginx";
constexpr char kOpensslBinary[] = "/usr/bin/openssl";

// %1$s: the work directory, %2$s: the served root, %3$d: the port, %4$d: the TLS port, its
// certificate and key in the work directory. /no-head/ serves the root again but refuses HEAD
// (403, as S3 does for a URL presigned for GET). Every path nginx would write
// by default (under /var) is moved into the work directory. /.nginx-ready answers the start-up
// probe and stays out of the access log.
constexpr absl::string_view kConfig = R"(daemon off;
master_process off;
worker_processes 1;
pid %1$s/nginx.pid;
error_log %1$s/error.log warn;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    log_format ranges '$request_method $uri "$http_range" $status $body_bytes_sent';
    access_log %1$s/access.log ranges;
    client_body_temp_path %1$s/client_body;
    proxy_temp_path %1$s/proxy;
    fastcgi_temp_path %1$s/fastcgi;
    uwsgi_temp_path %1$s/uwsgi;
    scgi_temp_path %1$s/scgi;
    server {
        listen 127.0.0.1:%3$d;
        listen 127.0.0.1:%4$d ssl;
        ssl_certificate %1$s/cert.pem;
        ssl_certificate_key %1$s/key.pem;
        root %2$s;
        location / { }
        location = /.nginx-ready { access_log off; return 204; }
        location /no-head/ {
            if ($request_method = HEAD) { return 403; }
            alias %2$s/;
        }
    }
}
)";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A self-signed certificate for IP 127.0.0.1 (cert.pem) and its key (key.pem) in `dir`.
absl::Status MakeCertificate(const std::string& dir) {
  absl::StatusOr<common::RunResult> made =
      common::Run({.argv = {kOpensslBinary, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                            dir + "/key.pem", "-out", dir + "/cert.pem"},
                   .env = {"PATH=/usr/bin:/bin"}},
                  absl::Seconds(30));
  if (!made.ok()) return made.status();
  if (!made->ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("openssl could not make a certificate: ", made->output));
  }
  return absl::OkStatus();
}

// A loopback port that was free a moment ago: nginx cannot report a port the kernel chose for
// it, so Start retries when another process takes this one meanwhile.
absl::StatusOr<int> ReservePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0;
  close(fd);
  if (!bound) return absl::InternalError("cannot bind a loopback port");
  return ntohs(addr.sin_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Nginx>> Nginx::Start(const std::string& root,
                                                    const std::string& work_dir) {
  for (const char* binary : {kNginxBinary, kOpensslBinary}) {
    if (access(binary, X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(binary, " not found (Debian packages nginx and openssl)"));
    }
  }
  std::unique_ptr<Nginx> nginx(new Nginx());
  nginx->work_dir_ = fs::absolute(work_dir).string();
  fs::create_directories(nginx->work_dir_);
  if (absl::Status made = MakeCertificate(nginx->work_dir_); !made.ok()) return made;
  const std::string config = nginx->work_dir_ + "/nginx.conf";
  const std::string error_log = nginx->work_dir_ + "/error.log";
  const std::string output_log = nginx->work_dir_ + "/stderr.log";
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = ReservePort();
    if (!port.ok()) return port.status();
    absl::StatusOr<int> tls_port = ReservePort();
    while (tls_port.ok() && *tls_port == *port) tls_port = ReservePort();  // closed, so free again
    if (!tls_port.ok()) return tls_port.status();
    std::ofstream(config) << absl::StrFormat(kConfig, nginx->work_dir_, fs::absolute(root).string(),
                                             *port, *tls_port);
    common::SpawnOptions spawn{
        .argv = {kNginxBinary, "-p", nginx->work_dir_, "-c", config, "-e", error_log},
        .env = {"PATH=/usr/bin:/bin"},
        .output_path = output_log};
    absl::StatusOr<pid_t> pid = common::Spawn(spawn);
    if (!pid.ok()) return pid.status();
    nginx->pid_ = *pid;
    nginx->address_ = absl::StrCat("127.0.0.1:", *port);
    nginx->tls_address_ = absl::StrCat("127.0.0.1:", *tls_port);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      // nginx exits at once when it cannot listen (a port was taken meanwhile): next ports.
      if (waitpid(nginx->pid_, nullptr, WNOHANG) == nginx->pid_) {
        nginx->pid_ = -1;
        break;
      }
      // Not a process that took the port meanwhile: nginx, with this configuration.
      absl::StatusOr<HttpResponse> answer =
          HttpRequest(nginx->address_, "GET", "/.nginx-ready", "", 1000);
      if (answer.ok() && answer->status == 204 &&
          absl::StartsWith(answer->headers["server"], "nginx")) {
        return nginx;
      }
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("nginx did not answer on ", nginx->address_, ":\n", ReadAll(error_log)));
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("nginx did not start:\n", ReadAll(error_log), ReadAll(output_log)));
}

Nginx::~Nginx() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

std::string Nginx::Url(const std::string& path) const {
  return absl::StrCat("http://", address_, "/", path);
}

std::string Nginx::NoHeadUrl(const std::string& path) const {
  return absl::StrCat("http://", address_, "/no-head/", path);
}

std::string Nginx::HttpsUrl(const std::string& path) const {
  return absl::StrCat("https://", tls_address_, "/", path);
}

std::string Nginx::AccessLog() const { return ReadAll(work_dir_ + "/access.log"); }

}  // namespace eofaas::tests
