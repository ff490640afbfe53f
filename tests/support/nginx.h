// Debian's nginx serving a directory over http:// on loopback: a real data store for tests that
// read http(s) objects (HEAD with Content-Length, ETag and Accept-Ranges; GET with Range).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace eofaas::tests {

/// One /usr/sbin/nginx process (no daemon, no master) serving the files under a directory at
/// http://127.0.0.1:<port>/, its configuration, logs and temporary files in a work directory.
/// Killed with its process group on destruction. Thread-compatible.
class Nginx {
 public:
  /// Starts nginx on a free port serving `root` and waits until it answers. `work_dir` is created
  /// when missing. FAILED_PRECONDITION when /usr/sbin/nginx is missing or keeps failing to start
  /// (its error log is in the message), DEADLINE_EXCEEDED when it does not answer in time.
  static absl::StatusOr<std::unique_ptr<Nginx>> Start(const std::string& root,
                                                      const std::string& work_dir);
  ~Nginx();
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  /// "127.0.0.1:<port>".
  const std::string& address() const { return address_; }
  /// The URL of `path` relative to the root: "http://127.0.0.1:<port>/<path>".
  std::string Url(const std::string& path) const;
  /// One line per request nginx has finished: `<method> <uri> "<Range header>" <status> <body
  /// bytes sent>`, e.g. `GET /big.txt "bytes=0-65535" 206 65536` ("-" for no Range header).
  std::string AccessLog() const;

 private:
  Nginx() = default;

  pid_t pid_ = -1;
  std::string work_dir_;
  std::string address_;
};

}  // namespace eofaas::tests
