// Debian's nginx serving a directory over http:// and https:// on loopback: a real data store for
// tests that read http(s) objects (HEAD with Content-Length, ETag and Accept-Ranges; GET with
// Range).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace eofaas::tests {

/// One /usr/sbin/nginx process (no daemon, no master) serving the files under a directory at
/// http://127.0.0.1:<port>/ and https://127.0.0.1:<tls port>/ (a self-signed certificate for IP
/// 127.0.0.1, made by /usr/bin/openssl at start), its configuration, certificate, logs and
/// temporary files in a work directory. Killed with its process group on destruction.
/// Thread-compatible.
class Nginx {
 public:
  /// Starts nginx on two free ports serving `root` and waits until it answers. `work_dir` is
  /// created when missing. FAILED_PRECONDITION when /usr/sbin/nginx or /usr/bin/openssl is
  /// missing, the certificate cannot be made, or nginx keeps failing to start (its error log is in
  /// the message); DEADLINE_EXCEEDED when it does not answer in time.
  static absl::StatusOr<std::unique_ptr<Nginx>> Start(const std::string& root,
                                                      const std::string& work_dir);
  ~Nginx();
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  /// "127.0.0.1:<port>".
  const std::string& address() const { return address_; }
  /// The URL of `path` relative to the root: "http://127.0.0.1:<port>/<path>".
  std::string Url(const std::string& path) const;
  /// The same object from a store that refuses HEAD with 403 (as S3 does for a URL presigned for
  /// GET) and serves GET as usual: "http://127.0.0.1:<port>/no-head/<path>".
  std::string NoHeadUrl(const std::string& path) const;
  /// The same over TLS: "https://127.0.0.1:<tls port>/<path>".
  std::string HttpsUrl(const std::string& path) const;
  /// The PEM file of the self-signed certificate https:// clients have to trust.
  std::string certificate() const { return work_dir_ + "/cert.pem"; }
  /// One line per request nginx has finished: `<method> <uri> "<Range header>" <status> <body
  /// bytes sent>`, e.g. `GET /big.txt "bytes=0-65535" 206 65536` ("-" for no Range header).
  std::string AccessLog() const;

 private:
  Nginx() = default;

  pid_t pid_ = -1;
  std::string work_dir_;
  std::string address_;
  std::string tls_address_;
};

}  // namespace eofaas::tests
