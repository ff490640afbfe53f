// A Kubernetes API server for tests: real HTTPS on 127.0.0.1 (Boost.Beast and OpenSSL), objects
// kept in memory, and the part of the API the control plane's client uses, answered as
// kube-apiserver answers it: server-side apply (each manager owning the fields it applied, in
// metadata.managedFields), get, delete with propagation policies, paged lists, watches streamed
// as chunked JSON events with bookmarks and 410 for expired versions, pods' logs as plain text,
// bearer tokens and client certificates, and Status objects for every error. What the cluster's
// controllers and kubelets would write (statuses, Pods, EndpointSlices) a test writes with Store
// and Erase.
//
// One thread accepts, one thread serves each connection (blocking I/O). resourceVersions count
// one history for all objects, as etcd's revision does.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json/object.hpp>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace eofaas::tests {

struct FakeApiServerOptions {
  /// The server's certificate chain and key (PEM); the certificate names 127.0.0.1.
  std::string certificate_pem;
  std::string key_pem;
  /// When set, a client certificate signed by it authenticates its holder (named by its CN); a
  /// client without one authenticates with a token, as with kube-apiserver's --client-ca-file.
  std::string client_ca_pem;
  /// The bearer tokens accepted (SetTokens changes them).
  std::set<std::string> tokens;
  /// Reject a watch from an expired resourceVersion with HTTP 410, as API servers before the
  /// watch cache's error events did, instead of a 200 stream holding one ERROR event.
  bool expired_watch_as_http_status = false;
  /// Write each watch event in two chunks split inside its JSON, as a network may deliver it.
  bool split_watch_events = false;
};

/// A request as it arrived.
struct RecordedRequest {
  std::string method;
  /// Path and query.
  std::string target;
  std::string content_type;
  std::string authorization;
  std::string body;
  /// Who it authenticated as: a certificate's CN, "token", or empty when rejected.
  std::string user;
};

/// Thread-safe. Listens from construction until destruction.
class FakeApiServer {
 public:
  explicit FakeApiServer(FakeApiServerOptions options);
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  /// "https://127.0.0.1:<port>".
  std::string url() const;
  int port() const;

  /// Replaces the accepted bearer tokens (a rotation).
  void SetTokens(std::set<std::string> tokens);
  /// The object at `path` (".../namespaces/<ns>/<resource>/<name>") as stored.
  std::optional<boost::json::object> Object(const std::string& path) const;
  /// Writes `object` at `path` whole, status included, as the cluster's own controllers and
  /// kubelets do (a Deployment's status or its scale, a Pod, an EndpointSlice, a Job's
  /// conditions): one ADDED or MODIFIED change. Keeps an existing object's uid and
  /// creationTimestamp; its generation is `object`'s own (1 when new and unset). As an update
  /// (not an apply) by the manager "kube-controller-manager", it takes ownership of the fields
  /// whose value it changes.
  void Store(const std::string& path, boost::json::object object);
  /// Removes the object at `path` at once, as the garbage collector or a kubelet finally does:
  /// one DELETED change. Nothing when there is none.
  void Erase(const std::string& path);
  /// What GET <pod_path>/log answers (text/plain) while the pod exists.
  void SetLog(const std::string& pod_path, std::string text);
  /// Every request so far, in order of arrival.
  std::vector<RecordedRequest> Requests() const;
  /// How many LIST (not watch) requests reached `collection_path`.
  int ListCount(const std::string& collection_path) const;
  /// The resourceVersion of the last change.
  int64_t revision() const;
  /// Waits (at most 10 s) until `count` watches are open; false if they did not come.
  bool WaitForWatches(int count);
  /// Waits (at most 10 s) for a request whose target contains `part`; false if none came.
  bool WaitForRequest(const std::string& part);

  /// Forgets the history of changes up to now: a watch or continue token from an older version
  /// gets 410 Gone.
  void Compact();
  /// Sends each open watch that allows bookmarks a BOOKMARK with the current version.
  void SendBookmarks();
  /// Ends every open watch, as the server does when their timeout passes.
  void EndWatches();
  /// Ends every open watch and returns once they have ended; new ones are held until
  /// ResumeWatches (a broken network).
  void PauseWatches();
  void ResumeWatches();

 private:
  struct Change {
    int64_t revision;
    std::string collection;
    std::string type;
    boost::json::object object;
  };
  struct Target;
  struct Reply;
  class Connection;

  void Accept();
  void Serve(boost::asio::ip::tcp::socket socket);
  Reply Handle(const Target& target, const std::string& method, const std::string& content_type,
               const std::string& body);
  Reply Apply(const Target& target, const std::string& content_type, const std::string& body);
  Reply Get(const Target& target);
  Reply Log(const Target& target);
  Reply Delete(const Target& target, const std::string& body);
  Reply List(const Target& target);
  /// Streams the watch; false when the connection cannot serve another request.
  bool Watch(Connection& connection, const Target& target);
  /// Stores `state` as the object at `path` (or removes it, for "DELETED") under the next
  /// resourceVersion, and records the change for watches. The mutex is held.
  void CommitLocked(const std::string& path, const std::string& collection, const std::string& type,
                    boost::json::object state);
  /// The garbage collector, after the object `owner_uid` was deleted with `policy`: deletes what
  /// it owns (and what those own), or for "Orphan" drops their references to it.
  void CollectGarbageLocked(const std::string& owner_uid, const std::string& policy);

  const FakeApiServerOptions options_;
  boost::asio::io_context io_;
  boost::asio::ssl::context tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread accept_thread_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  std::set<std::string> tokens_;
  std::vector<RecordedRequest> requests_;
  std::map<std::string, boost::json::object> objects_;
  std::map<std::string, std::string> logs_;  // by pod path
  std::vector<Change> history_;
  int64_t revision_ = 1000;
  int64_t compacted_ = 0;
  int64_t next_uid_ = 1;
  uint64_t bookmark_rounds_ = 0;
  uint64_t watch_endings_ = 0;
  int open_watches_ = 0;
  bool paused_ = false;
  std::set<int> open_sockets_;
  std::vector<std::thread> connection_threads_;
};

}  // namespace eofaas::tests
