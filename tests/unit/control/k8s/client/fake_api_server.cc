#include "tests/unit/control/k8s/client/fake_api_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <chrono>
#include <iterator>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::tests {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// The resources this server serves: group, plural (the path segment) and kind.
struct Served {
  std::string_view group;
  std::string_view plural;
  std::string_view kind;
};
constexpr Served kServed[] = {
    {"", "configmaps", "ConfigMap"},
    {"", "secrets", "Secret"},
    {"", "services", "Service"},
    {"", "pods", "Pod"},
    {"apps", "deployments", "Deployment"},
    {"apps", "replicasets", "ReplicaSet"},
    {"batch", "jobs", "Job"},
    {"autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler"},
    {"discovery.k8s.io", "endpointslices", "EndpointSlice"},
};

// The body of every error answer (metav1.Status).
json::object StatusObject(int code, std::string_view reason, std::string_view message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

std::string StringAt(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

json::object& Metadata(json::object& object) {
  json::value& metadata = object["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  return metadata.get_object();
}

std::string MetadataString(const json::object& object, std::string_view key) {
  const json::value* metadata = object.if_contains("metadata");
  return metadata != nullptr && metadata->is_object() ? StringAt(metadata->get_object(), key) : "";
}

std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
}

// A plain YAML scalar as Kubernetes (go-yaml, YAML 1.1) reads it; a quoted one stays a string.
json::value ResolveScalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() != "?") return json::string(text);
  for (std::string_view word :
       {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}) {
    if (text == word) return true;
  }
  for (std::string_view word :
       {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}) {
    if (text == word) return false;
  }
  if (text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
  const char* end = text.data() + text.size();
  int64_t integer = 0;
  if (auto [at, error] = std::from_chars(text.data(), end, integer);
      error == std::errc() && at == end) {
    return integer;
  }
  double number = 0;
  if (auto [at, error] = std::from_chars(text.data(), end, number);
      error == std::errc() && at == end) {
    return number;
  }
  return json::string(text);
}

json::value YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json::object object;
      for (const auto& entry : node) object[entry.first.Scalar()] = YamlToJson(entry.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      json::array array;
      for (const auto& item : node) array.push_back(YamlToJson(item));
      return array;
    }
    case YAML::NodeType::Scalar:
      return ResolveScalar(node);
    default:
      return nullptr;
  }
}

// The non-empty pieces of `text` between `separator`s.
std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> pieces;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = std::min(text.find(separator, start), text.size());
    if (end > start) pieces.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return pieces;
}

std::string PercentDecode(std::string_view text) {
  std::string decoded;
  for (size_t i = 0; i < text.size(); ++i) {
    int value = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ec == std::errc()) {
      decoded += static_cast<char>(value);
      i += 2;
    } else {
      decoded += text[i] == '+' ? ' ' : text[i];
    }
  }
  return decoded;
}

// One requirement of a label or field selector.
struct Requirement {
  std::string key;
  enum { kEquals, kNotEquals, kExists, kNotExists } op;
  std::string value;
};

// "a=b,c!=d,e,!f"; an empty selector selects everything.
std::vector<Requirement> ParseSelector(std::string_view selector) {
  std::vector<Requirement> requirements;
  for (const std::string& piece : Split(selector, ',')) {
    const std::string_view term = piece;
    if (size_t at = term.find("!="); at != std::string_view::npos) {
      requirements.push_back({std::string(term.substr(0, at)), Requirement::kNotEquals,
                              std::string(term.substr(at + 2))});
    } else if (size_t at = term.find('='); at != std::string_view::npos) {
      const size_t value_at = term.substr(at).starts_with("==") ? at + 2 : at + 1;
      requirements.push_back({std::string(term.substr(0, at)), Requirement::kEquals,
                              std::string(term.substr(value_at))});
    } else if (term.starts_with('!')) {
      requirements.push_back({std::string(term.substr(1)), Requirement::kNotExists, ""});
    } else {
      requirements.push_back({std::string(term), Requirement::kExists, ""});
    }
  }
  return requirements;
}

bool Satisfies(const std::vector<Requirement>& requirements,
               const std::map<std::string, std::string>& values) {
  for (const Requirement& requirement : requirements) {
    const auto found = values.find(requirement.key);
    const bool exists = found != values.end();
    switch (requirement.op) {
      case Requirement::kEquals:
        if (!exists || found->second != requirement.value) return false;
        break;
      case Requirement::kNotEquals:
        if (exists && found->second == requirement.value) return false;
        break;
      case Requirement::kExists:
        if (!exists) return false;
        break;
      case Requirement::kNotExists:
        if (exists) return false;
        break;
    }
  }
  return true;
}

// What decoding `metadata` into ObjectMeta says of a value of the wrong type: names, versions,
// labels and annotations are strings (a YAML `tier: y` is a boolean, `port: 80` a number).
std::string MetadataTypeError(const json::object& metadata) {
  const auto error = [](std::string_view field, const json::value& value) {
    return absl::StrFormat(
        "json: cannot unmarshal %s into Go struct field ObjectMeta.metadata.%s of type string",
        value.is_bool()     ? "bool"
        : value.is_number() ? "number"
                            : "value",
        field);
  };
  for (std::string_view field : {"name", "namespace", "resourceVersion", "uid"}) {
    const json::value* value = metadata.if_contains(field);
    if (value != nullptr && !value->is_string()) return error(field, *value);
  }
  for (std::string_view field : {"labels", "annotations"}) {
    const json::value* map = metadata.if_contains(field);
    if (map == nullptr || !map->is_object()) continue;
    for (const auto& [key, value] : map->get_object()) {
      if (!value.is_string()) return error(field, value);
    }
  }
  return "";
}

std::string EventLine(std::string_view type, const json::object& object) {
  return json::serialize(json::object{{"type", type}, {"object", object}}) + "\n";
}

// The authenticated client certificate's common name, or empty.
std::string CertificateUser(SSL* tls) {
  X509* certificate = SSL_get1_peer_certificate(tls);
  if (certificate == nullptr) return "";
  std::string user;
  char name[256];
  if (SSL_get_verify_result(tls) == X509_V_OK &&
      X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name,
                                sizeof(name)) > 0) {
    user = name;
  }
  X509_free(certificate);
  return user;
}

// The labels, and the fields a field selector may name, of an object.
std::map<std::string, std::string> Labels(const json::object& object) {
  std::map<std::string, std::string> labels;
  const json::value* metadata = object.if_contains("metadata");
  const json::value* values = metadata != nullptr && metadata->is_object()
                                  ? metadata->get_object().if_contains("labels")
                                  : nullptr;
  if (values != nullptr && values->is_object()) {
    for (const auto& [key, value] : values->get_object()) {
      if (value.is_string()) labels[std::string(key)] = std::string(value.get_string());
    }
  }
  return labels;
}

std::map<std::string, std::string> Fields(const json::object& object) {
  return {{"metadata.name", MetadataString(object, "name")},
          {"metadata.namespace", MetadataString(object, "namespace")}};
}

// Field ownership of server-side apply (sigs.k8s.io/structured-merge-diff), as far as the control
// plane relies on it. A field is the path of object keys to a value that is not an object, or to
// an empty one: arrays count as one atomic value, as lists without merge keys do.
using FieldPath = std::vector<std::string>;
using FieldSet = std::set<FieldPath>;

// What the server itself sets, or what names the object: no manager owns it. A status is written
// through its own subresource, which this server does not tell apart.
bool Untracked(const FieldPath& path) {
  if (path.size() == 1) return path[0] == "apiVersion" || path[0] == "kind" || path[0] == "status";
  constexpr std::string_view kServerMetadata[] = {
      "name",         "namespace",         "uid",        "resourceVersion",
      "generation",   "creationTimestamp", "finalizers", "deletionTimestamp",
      "managedFields"};
  return path.size() == 2 && path[0] == "metadata" &&
         std::find(std::begin(kServerMetadata), std::end(kServerMetadata), path[1]) !=
             std::end(kServerMetadata);
}

void AddFields(const json::object& object, FieldPath& path, FieldSet& fields) {
  for (const auto& [key, value] : object) {
    path.emplace_back(key);
    if (!Untracked(path)) {
      if (value.is_object() && !value.get_object().empty()) {
        AddFields(value.get_object(), path, fields);
      } else {
        fields.insert(path);
      }
    }
    path.pop_back();
  }
}

// The fields `object` sets.
FieldSet FieldsOf(const json::object& object) {
  FieldSet fields;
  FieldPath path;
  AddFields(object, path, fields);
  return fields;
}

const json::value* ValueAt(const json::object& object, const FieldPath& path) {
  const json::object* current = &object;
  const json::value* value = nullptr;
  for (const std::string& key : path) {
    if (current == nullptr || (value = current->if_contains(key)) == nullptr) return nullptr;
    current = value->if_object();
  }
  return value;
}

void SetAt(json::object& object, const FieldPath& path, const json::value& value) {
  json::object* current = &object;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    json::value& child = (*current)[path[i]];
    if (!child.is_object()) child = json::object();
    current = &child.get_object();
  }
  (*current)[path.back()] = value;
}

// Removes the field at `path` (from `at` on), and the objects that its removal leaves empty.
void RemoveAt(json::object& object, const FieldPath& path, size_t at = 0) {
  if (at + 1 == path.size()) {
    object.erase(path[at]);
    return;
  }
  json::value* child = object.if_contains(path[at]);
  if (child == nullptr || !child->is_object()) return;
  RemoveAt(child->get_object(), path, at + 1);
  if (child->get_object().empty()) object.erase(path[at]);
}

// One field holds (or is held inside) the other.
bool Overlaps(const FieldPath& a, const FieldPath& b) {
  const size_t common = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + common, b.begin());
}

bool Touches(const FieldPath& field, const FieldSet& fields) {
  return std::any_of(fields.begin(), fields.end(),
                     [&](const FieldPath& other) { return Overlaps(field, other); });
}

// The fields among `fields` (of `after`) whose value `after` changes from `before`.
FieldSet Changed(const json::object& before, const json::object& after, const FieldSet& fields) {
  FieldSet changed;
  for (const FieldPath& field : fields) {
    const json::value* old_value = ValueAt(before, field);
    if (old_value == nullptr || *old_value != *ValueAt(after, field)) changed.insert(field);
  }
  return changed;
}

// One entry of metadata.managedFields: the fields of a manager's last apply ("Apply"), or those
// its writes changed ("Update").
struct Manager {
  std::string name;
  std::string operation;
  FieldSet fields;
};

void ReadFieldsV1(const json::object& node, FieldPath& path, FieldSet& fields) {
  for (const auto& [key, child] : node) {
    const std::string name(key);
    if (!name.starts_with("f:") || !child.is_object()) continue;
    path.push_back(name.substr(2));
    if (child.get_object().empty()) {
      fields.insert(path);
    } else {
      ReadFieldsV1(child.get_object(), path, fields);
    }
    path.pop_back();
  }
}

std::vector<Manager> Managers(const json::object& object) {
  std::vector<Manager> managers;
  const json::value* entries = ValueAt(object, {"metadata", "managedFields"});
  if (entries == nullptr || !entries->is_array()) return managers;
  for (const json::value& entry : entries->get_array()) {
    Manager manager{StringAt(entry.as_object(), "manager"),
                    StringAt(entry.as_object(), "operation")};
    FieldPath path;
    if (const json::value* fields = entry.as_object().if_contains("fieldsV1")) {
      ReadFieldsV1(fields->as_object(), path, manager.fields);
    }
    managers.push_back(std::move(manager));
  }
  return managers;
}

// metadata.managedFields, fields in the FieldsV1 form ({"f:spec": {"f:replicas": {}}}); a manager
// left with no field has no entry.
json::array ManagedFields(const std::vector<Manager>& managers, std::string_view api_version) {
  json::array entries;
  for (const Manager& manager : managers) {
    if (manager.fields.empty()) continue;
    json::object fields;
    for (const FieldPath& path : manager.fields) {
      json::object* node = &fields;
      for (const std::string& key : path) {
        json::value& child = (*node)["f:" + key];
        if (!child.is_object()) child = json::object();
        node = &child.get_object();
      }
    }
    entries.push_back(json::object{{"manager", manager.name},
                                   {"operation", manager.operation},
                                   {"apiVersion", api_version},
                                   {"fieldsType", "FieldsV1"},
                                   {"fieldsV1", std::move(fields)}});
  }
  return entries;
}

// Who writes what Store writes: the controllers (the HPA's scale, the Deployment controller's
// status) and, for pods, the kubelet; one name will do.
constexpr char kStoreManager[] = "kube-controller-manager";

}  // namespace

// A request's path, resolved to the resource it names, and its query.
struct FakeApiServer::Target {
  std::string api_version;  // "v1", "apps/v1"
  std::string group;
  std::string namespace_name;
  std::string plural;
  std::string kind;
  std::string name;         // empty for the collection
  std::string subresource;  // "log" in .../pods/<name>/log; empty for the object itself
  std::string collection;
  std::map<std::string, std::string> query;

  std::string Param(const std::string& key) const {
    const auto found = query.find(key);
    return found == query.end() ? "" : found->second;
  }
  // "deployments.apps", as messages name a resource.
  std::string Qualified() const { return group.empty() ? plural : plural + "." + group; }

  static std::optional<Target> Parse(std::string_view raw) {
    Target target;
    const size_t question = raw.find('?');
    if (question != std::string_view::npos) {
      for (const std::string& piece : Split(raw.substr(question + 1), '&')) {
        const std::string_view pair = piece;
        const size_t equals = pair.find('=');
        target.query[PercentDecode(pair.substr(0, equals))] =
            equals == std::string_view::npos ? "" : PercentDecode(pair.substr(equals + 1));
      }
    }
    const std::vector<std::string> segments = Split(raw.substr(0, question), '/');
    size_t at = 0;
    if (segments.size() >= 2 && segments[0] == "api") {
      target.api_version = segments[1];
      at = 2;
    } else if (segments.size() >= 3 && segments[0] == "apis") {
      target.group = segments[1];
      target.api_version = segments[1] + "/" + segments[2];
      at = 3;
    } else {
      return std::nullopt;
    }
    if (segments.size() < at + 3 || segments.size() > at + 5 || segments[at] != "namespaces") {
      return std::nullopt;
    }
    target.namespace_name = segments[at + 1];
    target.plural = segments[at + 2];
    if (segments.size() >= at + 4) target.name = segments[at + 3];
    if (segments.size() == at + 5) target.subresource = segments[at + 4];
    for (const Served& served : kServed) {
      if (served.group == target.group && served.plural == target.plural) {
        target.kind = std::string(served.kind);
      }
    }
    if (target.kind.empty()) return std::nullopt;
    target.collection =
        "/" +
        absl::StrJoin(std::vector<std::string>(segments.begin(), segments.begin() + at + 3), "/");
    return target;
  }
};

struct FakeApiServer::Reply {
  int status = 200;
  json::object body;
  /// Set for a plain-text answer (a pod's log): sent instead of `body`.
  std::optional<std::string> text;
};

// One client's TLS connection and the ways of answering on it.
class FakeApiServer::Connection {
 public:
  Connection(tcp::socket socket, ssl::context& tls) : stream(std::move(socket), tls) {}

  bool Send(const Reply& reply, bool keep_alive) {
    http::response<http::string_body> response(static_cast<http::status>(reply.status), 11);
    response.set(http::field::content_type, reply.text ? "text/plain" : "application/json");
    response.keep_alive(keep_alive);
    response.body() = reply.text ? *reply.text : json::serialize(reply.body);
    response.prepare_payload();
    boost::system::error_code error;
    http::write(stream, response, error);
    return !error && keep_alive;
  }

  // A 200 response whose body follows in chunks.
  bool StartStream() {
    http::response<http::empty_body> response(http::status::ok, 11);
    response.set(http::field::content_type, "application/json");
    response.chunked(true);
    http::response_serializer<http::empty_body> serializer(response);
    boost::system::error_code error;
    http::write_header(stream, serializer, error);
    return !error;
  }

  bool SendEvent(const std::string& line, bool split) {
    if (split)
      return SendChunk(line.substr(0, line.size() / 2)) && SendChunk(line.substr(line.size() / 2));
    return SendChunk(line);
  }

  bool EndStream() {
    boost::system::error_code error;
    asio::write(stream, http::make_chunk_last(), error);
    return !error;
  }

  beast::ssl_stream<tcp::socket> stream;

 private:
  bool SendChunk(const std::string& data) {
    boost::system::error_code error;
    asio::write(stream, http::make_chunk(asio::buffer(data)), error);
    return !error;
  }
};

FakeApiServer::FakeApiServer(FakeApiServerOptions options)
    : options_(std::move(options)),
      tls_(ssl::context::tls_server),
      acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      tokens_(options_.tokens) {
  tls_.use_certificate_chain(asio::buffer(options_.certificate_pem));
  tls_.use_private_key(asio::buffer(options_.key_pem), ssl::context::pem);
  if (!options_.client_ca_pem.empty()) {
    tls_.add_certificate_authority(asio::buffer(options_.client_ca_pem));
    tls_.set_verify_mode(ssl::verify_peer);  // a certificate is optional, but must be valid
  }
  accept_thread_ = std::thread([this] { Accept(); });
}

FakeApiServer::~FakeApiServer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (int socket : open_sockets_) ::shutdown(socket, SHUT_RDWR);
  }
  changed_.notify_all();
  ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes the blocked accept
  accept_thread_.join();
  for (std::thread& thread : connection_threads_) thread.join();
}

std::string FakeApiServer::url() const { return absl::StrCat("https://127.0.0.1:", port()); }

int FakeApiServer::port() const { return acceptor_.local_endpoint().port(); }

void FakeApiServer::SetTokens(std::set<std::string> tokens) {
  std::lock_guard lock(mutex_);
  tokens_ = std::move(tokens);
}

std::optional<json::object> FakeApiServer::Object(const std::string& path) const {
  std::lock_guard lock(mutex_);
  const auto found = objects_.find(path);
  if (found == objects_.end()) return std::nullopt;
  return found->second;
}

std::vector<RecordedRequest> FakeApiServer::Requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

int FakeApiServer::ListCount(const std::string& collection_path) const {
  std::lock_guard lock(mutex_);
  int lists = 0;
  for (const RecordedRequest& request : requests_) {
    const std::optional<Target> target = Target::Parse(request.target);
    if (request.method == "GET" && target && target->collection == collection_path &&
        target->name.empty() && target->Param("watch").empty()) {
      ++lists;
    }
  }
  return lists;
}

int64_t FakeApiServer::revision() const {
  std::lock_guard lock(mutex_);
  return revision_;
}

bool FakeApiServer::WaitForWatches(int count) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return open_watches_ >= count; });
}

bool FakeApiServer::WaitForRequest(const std::string& part) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::seconds(10), [&] {
    return std::any_of(requests_.begin(), requests_.end(), [&](const RecordedRequest& request) {
      return absl::StrContains(request.target, part);
    });
  });
}

void FakeApiServer::Compact() {
  std::lock_guard lock(mutex_);
  compacted_ = revision_;
}

void FakeApiServer::SendBookmarks() {
  std::lock_guard lock(mutex_);
  ++bookmark_rounds_;
  changed_.notify_all();
}

void FakeApiServer::EndWatches() {
  std::lock_guard lock(mutex_);
  ++watch_endings_;
  changed_.notify_all();
}

void FakeApiServer::PauseWatches() {
  std::unique_lock lock(mutex_);
  paused_ = true;
  ++watch_endings_;
  changed_.notify_all();
  changed_.wait(lock, [&] { return open_watches_ == 0; });
}

void FakeApiServer::ResumeWatches() {
  std::lock_guard lock(mutex_);
  paused_ = false;
  changed_.notify_all();
}

void FakeApiServer::Accept() {
  for (;;) {
    tcp::socket socket(io_);
    boost::system::error_code error;
    acceptor_.accept(socket, error);
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (error) continue;
    open_sockets_.insert(socket.native_handle());
    connection_threads_.emplace_back(
        [this, socket = std::move(socket)]() mutable { Serve(std::move(socket)); });
  }
}

void FakeApiServer::Serve(tcp::socket socket) {
  const int native_socket = socket.native_handle();
  Connection connection(std::move(socket), tls_);
  boost::system::error_code error;
  connection.stream.handshake(ssl::stream_base::server, error);
  const std::string certificate_user =
      error ? "" : CertificateUser(connection.stream.native_handle());
  beast::flat_buffer buffer;
  while (!error) {
    http::request<http::string_body> request;
    http::read(connection.stream, buffer, request, error);
    if (error) break;
    RecordedRequest record{.method = std::string(request.method_string()),
                           .target = std::string(request.target()),
                           .content_type = std::string(request[http::field::content_type]),
                           .authorization = std::string(request[http::field::authorization]),
                           .body = request.body()};
    {
      std::lock_guard lock(mutex_);
      const std::string_view authorization = record.authorization;
      if (!certificate_user.empty()) {
        record.user = certificate_user;
      } else if (authorization.starts_with("Bearer ") &&
                 tokens_.contains(std::string(authorization.substr(7)))) {
        record.user = "token";
      }
      requests_.push_back(record);
      changed_.notify_all();
    }
    const std::optional<Target> target = Target::Parse(record.target);
    bool keep_alive = request.keep_alive();
    if (record.user.empty()) {
      keep_alive =
          connection.Send({401, StatusObject(401, "Unauthorized", "Unauthorized")}, keep_alive);
    } else if (!target) {
      keep_alive = connection.Send(
          {404, StatusObject(404, "NotFound", "the server could not find the requested resource")},
          keep_alive);
    } else if (record.method == "GET" && target->name.empty() &&
               (target->Param("watch") == "1" || target->Param("watch") == "true")) {
      keep_alive = Watch(connection, *target) && keep_alive;
    } else {
      keep_alive = connection.Send(Handle(*target, record.method, record.content_type, record.body),
                                   keep_alive);
    }
    if (!keep_alive) break;
  }
  std::lock_guard lock(mutex_);
  open_sockets_.erase(native_socket);
}

FakeApiServer::Reply FakeApiServer::Handle(const Target& target, const std::string& method,
                                           const std::string& content_type,
                                           const std::string& body) {
  if (target.subresource == "log" && target.plural == "pods" && method == "GET") {
    return Log(target);
  }
  if (!target.subresource.empty()) {
    return {404, StatusObject(404, "NotFound", "the server could not find the requested resource")};
  }
  if (method == "PATCH" && !target.name.empty()) return Apply(target, content_type, body);
  if (method == "GET") return target.name.empty() ? List(target) : Get(target);
  if (method == "DELETE" && !target.name.empty()) return Delete(target, body);
  return {405, StatusObject(405, "MethodNotAllowed",
                            "the server does not allow this method on the requested resource")};
}

void FakeApiServer::CommitLocked(const std::string& path, const std::string& collection,
                                 const std::string& type, json::object state) {
  ++revision_;
  Metadata(state)["resourceVersion"] = std::to_string(revision_);
  if (type == "DELETED") {
    objects_.erase(path);
  } else {
    objects_[path] = state;
  }
  history_.push_back({revision_, collection, type, std::move(state)});
  changed_.notify_all();
}

FakeApiServer::Reply FakeApiServer::Apply(const Target& target, const std::string& content_type,
                                          const std::string& body) {
  const std::string media_type = content_type.substr(0, content_type.find(';'));
  if (media_type != "application/apply-patch+yaml") {
    return {415, StatusObject(415, "UnsupportedMediaType",
                              absl::StrCat("the body of the request was in an unknown format - "
                                           "accepted media types include: "
                                           "application/apply-patch+yaml (got \"",
                                           media_type, "\")"))};
  }
  const std::string manager = target.Param("fieldManager");
  if (manager.empty()) {
    return {422, StatusObject(422, "Invalid",
                              "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                              "value: is required for apply patch")};
  }
  const std::string force = target.Param("force");
  json::value parsed;
  try {
    parsed = YamlToJson(YAML::Load(body));
  } catch (const YAML::Exception& error) {
    return {400,
            StatusObject(400, "BadRequest", absl::StrCat("error decoding YAML: ", error.what()))};
  }
  if (!parsed.is_object())
    return {400, StatusObject(400, "BadRequest", "the body is not an object")};
  json::object applied = std::move(parsed.get_object());
  const auto bad_request = [](const std::string& message) {
    return Reply{400, StatusObject(400, "BadRequest", message)};
  };
  if (StringAt(applied, "apiVersion") != target.api_version) {
    return bad_request(absl::StrFormat(
        "the API version in the data (%s) does not match the expected API version (%s)",
        StringAt(applied, "apiVersion"), target.api_version));
  }
  if (StringAt(applied, "kind") != target.kind) {
    return bad_request(
        absl::StrFormat("the kind in the data (%s) does not match the expected kind (%s)",
                        StringAt(applied, "kind"), target.kind));
  }
  json::object& metadata = Metadata(applied);
  if (std::string error = MetadataTypeError(metadata); !error.empty()) return bad_request(error);
  if (StringAt(metadata, "name") != target.name) {
    return bad_request(
        absl::StrFormat("the name of the object (%s) does not match the name on the URL (%s)",
                        StringAt(metadata, "name"), target.name));
  }
  if (!StringAt(metadata, "namespace").empty() &&
      StringAt(metadata, "namespace") != target.namespace_name) {
    return bad_request(
        "the namespace of the provided object does not match the namespace sent on the request");
  }

  std::lock_guard lock(mutex_);
  const std::string path = target.collection + "/" + target.name;
  const auto existing = objects_.find(path);
  const bool created = existing == objects_.end();
  // A resourceVersion in the applied object is a precondition.
  const std::string precondition = StringAt(metadata, "resourceVersion");
  if (!precondition.empty() &&
      (created || precondition != MetadataString(existing->second, "resourceVersion"))) {
    return {409, StatusObject(409, "Conflict",
                              absl::StrFormat("Operation cannot be fulfilled on %s \"%s\": the "
                                              "object has been modified; please apply your changes "
                                              "to the latest version and try again",
                                              target.Qualified(), target.name))};
  }
  // The fields whose value the apply changes are taken from the managers that own them; without
  // force that is a conflict.
  const json::object old = created ? json::object() : existing->second;
  std::vector<Manager> managers = Managers(old);
  const FieldSet fields = FieldsOf(applied);
  const FieldSet changed = Changed(old, applied, fields);
  const auto is_applier = [&](const Manager& other) {
    return other.name == manager && other.operation == "Apply";
  };
  for (Manager& other : managers) {
    if (is_applier(other)) continue;
    for (const FieldPath& owned : other.fields) {
      if (force != "true" && Touches(owned, changed)) {
        return {409, StatusObject(409, "Conflict",
                                  absl::StrFormat("Apply failed with 1 conflict: conflict with "
                                                  "\"%s\": .%s",
                                                  other.name, absl::StrJoin(owned, ".")))};
      }
    }
    std::erase_if(other.fields, [&](const FieldPath& owned) { return Touches(owned, changed); });
  }
  auto own = std::find_if(managers.begin(), managers.end(), is_applier);
  if (own == managers.end()) own = managers.insert(own, Manager{manager, "Apply"});
  FieldSet dropped;
  std::set_difference(own->fields.begin(), own->fields.end(), fields.begin(), fields.end(),
                      std::inserter(dropped, dropped.end()));
  own->fields = fields;

  json::object stored = old;
  for (const FieldPath& field : fields) SetAt(stored, field, *ValueAt(applied, field));
  // A field the manager applied before and no longer does goes, unless another manager owns it.
  for (const FieldPath& field : dropped) {
    if (std::none_of(managers.begin(), managers.end(),
                     [&](const Manager& other) { return Touches(field, other.fields); })) {
      RemoveAt(stored, field);
    }
  }
  stored["apiVersion"] = target.api_version;
  stored["kind"] = target.kind;
  json::object& stored_metadata = Metadata(stored);
  stored_metadata["name"] = target.name;
  stored_metadata["namespace"] = target.namespace_name;
  stored_metadata["managedFields"] = ManagedFields(managers, target.api_version);
  if (created) {
    stored_metadata["uid"] = absl::StrFormat("00000000-0000-4000-8000-%012d", next_uid_++);
    stored_metadata["creationTimestamp"] = Now();
    stored_metadata["generation"] = 1;
  } else {
    const json::value* old_spec = old.if_contains("spec");
    const json::value* new_spec = stored.if_contains("spec");
    const bool spec_changed =
        (old_spec == nullptr) != (new_spec == nullptr) || (old_spec && *old_spec != *new_spec);
    const json::value* old_generation = ValueAt(old, {"metadata", "generation"});
    const int64_t generation = old_generation != nullptr ? old_generation->to_number<int64_t>() : 1;
    stored_metadata["generation"] = generation + (spec_changed ? 1 : 0);
    if (stored == old) return {200, old};  // nothing changed: no new version
  }
  CommitLocked(path, target.collection, created ? "ADDED" : "MODIFIED", stored);
  return {created ? 201 : 200, objects_.at(path)};
}

FakeApiServer::Reply FakeApiServer::Log(const Target& target) {
  std::lock_guard lock(mutex_);
  const std::string path = target.collection + "/" + target.name;
  if (!objects_.contains(path)) {
    return {404,
            StatusObject(404, "NotFound", absl::StrFormat("pods \"%s\" not found", target.name))};
  }
  const auto log = logs_.find(path);
  return {200, {}, log == logs_.end() ? "" : log->second};
}

void FakeApiServer::Store(const std::string& path, json::object object) {
  const size_t slash = path.rfind('/');
  const std::string collection = path.substr(0, slash);
  const std::vector<std::string> segments = Split(collection, '/');
  std::lock_guard lock(mutex_);
  json::object& metadata = Metadata(object);
  metadata["name"] = path.substr(slash + 1);
  metadata["namespace"] = segments[segments.size() - 2];
  const auto existing = objects_.find(path);
  const json::object old = existing == objects_.end() ? json::object() : existing->second;
  if (existing == objects_.end()) {
    metadata["uid"] = absl::StrFormat("00000000-0000-4000-8000-%012d", next_uid_++);
    metadata["creationTimestamp"] = Now();
    if (!metadata.contains("generation")) metadata["generation"] = 1;
  } else {
    for (std::string_view key : {"uid", "creationTimestamp"}) {
      if (const json::value* value = Metadata(existing->second).if_contains(key)) {
        metadata[key] = *value;
      }
    }
  }
  // An update (not an apply) takes the fields whose value it changes; a field it removes is no
  // longer anyone's.
  std::vector<Manager> managers = Managers(old);
  const FieldSet changed = Changed(old, object, FieldsOf(object));
  for (Manager& manager : managers) {
    std::erase_if(manager.fields, [&](const FieldPath& owned) {
      return Touches(owned, changed) || ValueAt(object, owned) == nullptr;
    });
  }
  auto writer = std::find_if(managers.begin(), managers.end(), [](const Manager& manager) {
    return manager.name == kStoreManager && manager.operation == "Update";
  });
  if (writer == managers.end()) writer = managers.insert(writer, Manager{kStoreManager, "Update"});
  writer->fields.insert(changed.begin(), changed.end());
  metadata["managedFields"] = ManagedFields(managers, StringAt(object, "apiVersion"));
  CommitLocked(path, collection, existing == objects_.end() ? "ADDED" : "MODIFIED",
               std::move(object));
}

void FakeApiServer::Erase(const std::string& path) {
  std::lock_guard lock(mutex_);
  const auto existing = objects_.find(path);
  if (existing == objects_.end()) return;
  CommitLocked(path, path.substr(0, path.rfind('/')), "DELETED", existing->second);
  logs_.erase(path);
}

void FakeApiServer::SetLog(const std::string& pod_path, std::string text) {
  std::lock_guard lock(mutex_);
  logs_[pod_path] = std::move(text);
}

FakeApiServer::Reply FakeApiServer::Get(const Target& target) {
  std::lock_guard lock(mutex_);
  const auto found = objects_.find(target.collection + "/" + target.name);
  if (found == objects_.end()) {
    return {404,
            StatusObject(404, "NotFound",
                         absl::StrFormat("%s \"%s\" not found", target.Qualified(), target.name))};
  }
  return {200, found->second};
}

void FakeApiServer::CollectGarbageLocked(const std::string& owner_uid, const std::string& policy) {
  std::vector<std::string> dependents;
  for (auto& [path, object] : objects_) {
    const json::value* owners = Metadata(object).if_contains("ownerReferences");
    if (owners == nullptr || !owners->is_array()) continue;
    for (const json::value& owner : owners->get_array()) {
      if (owner.is_object() && StringAt(owner.get_object(), "uid") == owner_uid) {
        dependents.push_back(path);
      }
    }
  }
  for (const std::string& path : dependents) {
    if (!objects_.contains(path)) continue;  // already collected as a dependent's dependent
    json::object object = objects_.at(path);
    const std::string collection = path.substr(0, path.rfind('/'));
    if (policy == "Orphan") {
      json::array& owners = Metadata(object)["ownerReferences"].as_array();
      owners.erase(std::remove_if(owners.begin(), owners.end(),
                                  [&](const json::value& owner) {
                                    return StringAt(owner.as_object(), "uid") == owner_uid;
                                  }),
                   owners.end());
      CommitLocked(path, collection, "MODIFIED", std::move(object));
    } else {
      const std::string uid = MetadataString(object, "uid");
      CommitLocked(path, collection, "DELETED", std::move(object));
      CollectGarbageLocked(uid, policy);
    }
  }
}

FakeApiServer::Reply FakeApiServer::Delete(const Target& target, const std::string& body) {
  std::string policy = "Background";
  if (!body.empty()) {
    boost::system::error_code error;
    const json::value options = json::parse(body, error);
    if (error || !options.is_object()) {
      return {400, StatusObject(400, "BadRequest", "the body is not DeleteOptions")};
    }
    if (std::string given = StringAt(options.get_object(), "propagationPolicy"); !given.empty()) {
      policy = given;
    }
  }
  if (policy != "Foreground" && policy != "Background" && policy != "Orphan") {
    return {422, StatusObject(422, "Invalid",
                              absl::StrFormat("DeleteOptions.meta.k8s.io \"\" is invalid: "
                                              "propagationPolicy: Unsupported value: \"%s\"",
                                              policy))};
  }
  std::lock_guard lock(mutex_);
  const std::string path = target.collection + "/" + target.name;
  const auto found = objects_.find(path);
  if (found == objects_.end()) {
    return {404,
            StatusObject(404, "NotFound",
                         absl::StrFormat("%s \"%s\" not found", target.Qualified(), target.name))};
  }
  json::object object = found->second;
  const std::string uid = MetadataString(object, "uid");
  if (policy == "Foreground") {
    // The object stays, marked, until the garbage collector has deleted what it owns; the answer
    // is 202 with the marked object.
    json::object& metadata = Metadata(object);
    metadata["deletionTimestamp"] = Now();
    json::value& finalizers = metadata["finalizers"];
    if (!finalizers.is_array()) finalizers = json::array();
    finalizers.get_array().push_back("foregroundDeletion");
    CommitLocked(path, target.collection, "MODIFIED", object);
    Reply reply{202, objects_.at(path)};
    CollectGarbageLocked(uid, policy);
    CommitLocked(path, target.collection, "DELETED", objects_.at(path));
    return reply;
  }
  CommitLocked(path, target.collection, "DELETED", object);
  CollectGarbageLocked(uid, policy);
  return {200, json::object{{"kind", "Status"},
                            {"apiVersion", "v1"},
                            {"metadata", json::object()},
                            {"status", "Success"},
                            {"details", json::object{{"name", target.name},
                                                     {"group", target.group},
                                                     {"kind", target.plural},
                                                     {"uid", uid}}}}};
}

FakeApiServer::Reply FakeApiServer::List(const Target& target) {
  int64_t limit = 0;
  if (!target.Param("limit").empty() && !absl::SimpleAtoi(target.Param("limit"), &limit)) {
    return {400, StatusObject(400, "BadRequest", "limit: not a number")};
  }
  const std::vector<Requirement> labels = ParseSelector(target.Param("labelSelector"));
  const std::vector<Requirement> fields = ParseSelector(target.Param("fieldSelector"));
  for (const Requirement& field : fields) {
    if (field.key != "metadata.name" && field.key != "metadata.namespace") {
      return {400, StatusObject(400, "BadRequest",
                                absl::StrCat("field label not supported: ", field.key))};
    }
  }
  std::lock_guard lock(mutex_);
  int64_t list_revision = revision_;
  std::string after;  // the last name of the previous page
  if (const std::string token = target.Param("continue"); !token.empty()) {
    std::string decoded;
    std::vector<std::string> parts;
    if (absl::Base64Unescape(token, &decoded))
      parts = absl::StrSplit(decoded, absl::MaxSplits('/', 1));
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &list_revision)) {
      return {400, StatusObject(400, "BadRequest", "continue key is not valid")};
    }
    if (list_revision < compacted_) {
      return {410,
              StatusObject(410, "Expired",
                           "The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue "
                           "parameter.")};
    }
    after = parts[1];
  }
  // Pages come from the objects as they are now (kube-apiserver serves them from the snapshot
  // of the first page's version); the continue token and the version are the same.
  json::array items;
  std::string last;
  std::string next;
  const std::string prefix = target.collection + "/";
  for (auto it = objects_.upper_bound(prefix + after);
       it != objects_.end() && it->first.starts_with(prefix); ++it) {
    if (!Satisfies(labels, Labels(it->second)) || !Satisfies(fields, Fields(it->second))) continue;
    if (limit > 0 && static_cast<int64_t>(items.size()) == limit) {
      next = absl::Base64Escape(absl::StrCat(list_revision, "/", last));
      break;
    }
    json::object item = it->second;
    item.erase("kind");
    item.erase("apiVersion");
    items.push_back(std::move(item));
    last = it->first.substr(prefix.size());
  }
  json::object metadata{{"resourceVersion", std::to_string(list_revision)}};
  if (!next.empty()) metadata["continue"] = next;
  return {200, json::object{{"kind", target.kind + "List"},
                            {"apiVersion", target.api_version},
                            {"metadata", std::move(metadata)},
                            {"items", std::move(items)}}};
}

bool FakeApiServer::Watch(Connection& connection, const Target& target) {
  const std::vector<Requirement> labels = ParseSelector(target.Param("labelSelector"));
  const std::vector<Requirement> fields = ParseSelector(target.Param("fieldSelector"));
  const auto selected = [&](const json::object& object) {
    return Satisfies(labels, Labels(object)) && Satisfies(fields, Fields(object));
  };
  const bool bookmarks = target.Param("allowWatchBookmarks") == "true";
  int64_t timeout_seconds = 1800;
  if (!target.Param("timeoutSeconds").empty()) {
    absl::SimpleAtoi(target.Param("timeoutSeconds"), &timeout_seconds);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  const std::string version = target.Param("resourceVersion");
  int64_t from = 0;
  if (!version.empty() && version != "0" && !absl::SimpleAtoi(version, &from)) {
    return connection.Send(
        {400, StatusObject(400, "BadRequest", "resourceVersion: Invalid value: " + version)}, true);
  }

  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !paused_ || stopping_; });
  if (stopping_) return false;
  std::vector<std::string> lines;
  if (version.empty() || version == "0") {
    // No version: the current objects as ADDED events, then their changes.
    from = revision_;
    const std::string prefix = target.collection + "/";
    for (auto it = objects_.upper_bound(prefix);
         it != objects_.end() && it->first.starts_with(prefix); ++it) {
      if (selected(it->second)) lines.push_back(EventLine("ADDED", it->second));
    }
  } else if (from < compacted_) {
    const json::object status = StatusObject(
        410, "Expired", absl::StrFormat("too old resource version: %d (%d)", from, compacted_));
    lock.unlock();
    if (options_.expired_watch_as_http_status) return connection.Send({410, status}, true);
    return connection.StartStream() &&
           connection.SendEvent(EventLine("ERROR", status), options_.split_watch_events) &&
           connection.EndStream();
  }
  const uint64_t endings = watch_endings_;
  uint64_t bookmark_rounds = bookmark_rounds_;
  ++open_watches_;
  changed_.notify_all();
  lock.unlock();
  // Every return below happens with the mutex released.
  struct Closing {
    FakeApiServer& server;
    ~Closing() {
      std::lock_guard lock(server.mutex_);
      --server.open_watches_;
      server.changed_.notify_all();
    }
  } closing{*this};
  if (!connection.StartStream()) return false;
  for (;;) {
    for (const std::string& line : lines) {
      if (!connection.SendEvent(line, options_.split_watch_events)) return false;
    }
    lines.clear();
    lock.lock();
    bool end = false;
    for (;;) {
      for (const Change& change : history_) {
        if (change.revision > from && change.collection == target.collection &&
            selected(change.object)) {
          lines.push_back(EventLine(change.type, change.object));
        }
      }
      from = revision_;
      if (bookmarks && bookmark_rounds != bookmark_rounds_) {
        lines.push_back(EventLine(
            "BOOKMARK", json::object{{"kind", target.kind},
                                     {"apiVersion", target.api_version},
                                     {"metadata", json::object{{"resourceVersion",
                                                                std::to_string(revision_)}}}}));
      }
      bookmark_rounds = bookmark_rounds_;
      end = stopping_ || watch_endings_ != endings || std::chrono::steady_clock::now() >= deadline;
      if (!lines.empty() || end) break;
      changed_.wait_until(lock, deadline);
    }
    lock.unlock();
    if (end) break;
  }
  for (const std::string& line : lines) {
    if (!connection.SendEvent(line, options_.split_watch_events)) return false;
  }
  return connection.EndStream();
}

}  // namespace eofaas::tests
