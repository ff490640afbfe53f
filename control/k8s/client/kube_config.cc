#include "control/k8s/client/kube_config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::control::k8s {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// One entry of a kubeconfig: the keys of a cluster, user or context, with the path that names
// them in messages ("users[\"ci\"].user").
class Entry {
 public:
  Entry(YAML::Node node, std::string where) : node_(std::move(node)), where_(std::move(where)) {}

  std::string Key(absl::string_view key) const { return absl::StrCat(where_, ".", key); }
  bool Has(const char* key) const { return node_[key].IsDefined() && !node_[key].IsNull(); }

  absl::StatusOr<std::string> String(const char* key) const {
    const YAML::Node value = node_[key];
    if (!value.IsDefined() || value.IsNull()) return std::string();
    if (!value.IsScalar()) return absl::InvalidArgumentError(Key(key) + ": not a string");
    return value.Scalar();
  }

  // The bytes of `<key>-data` (base64) or else of the file `<key>` (relative to `base`); empty
  // when neither is set.
  absl::StatusOr<std::string> Data(const std::string& key, const std::filesystem::path& base) {
    const std::string data_key = key + "-data";
    absl::StatusOr<std::string> data = String(data_key.c_str());
    if (!data.ok()) return data.status();
    if (!data->empty()) {
      std::string decoded;
      if (!absl::Base64Unescape(*data, &decoded)) {
        return absl::InvalidArgumentError(Key(data_key) + ": not base64");
      }
      return decoded;
    }
    absl::StatusOr<std::string> file = String(key.c_str());
    if (!file.ok() || file->empty()) return file;
    return ReadFile((base / *file).string());
  }

 private:
  YAML::Node node_;
  std::string where_;
};

// The `entry_key` map of the item named `name` in the list `list_key` of a kubeconfig.
absl::StatusOr<Entry> Named(const YAML::Node& root, const char* list_key, const std::string& name,
                            const char* entry_key) {
  // Reading a key that is not there gives an invalid node, which only IsDefined may be asked.
  const YAML::Node list = root[list_key];
  const bool present = list.IsDefined() && !list.IsNull();
  if (present && !list.IsSequence()) {
    return absl::InvalidArgumentError(absl::StrCat(list_key, ": not a list"));
  }
  for (size_t i = 0; present && i < list.size(); ++i) {
    const YAML::Node item = list[i];
    if (!item.IsMap() || !item["name"].IsDefined() || !item["name"].IsScalar() ||
        item["name"].Scalar() != name) {
      continue;
    }
    const YAML::Node entry = item[entry_key];
    std::string where = absl::StrCat(list_key, "[\"", name, "\"].", entry_key);
    if (!entry.IsDefined() || !entry.IsMap()) {
      return absl::InvalidArgumentError(where + ": not a map");
    }
    return Entry(entry, std::move(where));
  }
  return absl::InvalidArgumentError(absl::StrCat(list_key, ": no entry named \"", name, "\""));
}

absl::StatusOr<KubeConfig> FromKubeconfig(const YAML::Node& root, const std::filesystem::path& base,
                                          absl::string_view context) {
  if (!root.IsMap()) return absl::InvalidArgumentError("not a map");
  std::string context_name(context);
  if (context_name.empty() && root["current-context"].IsDefined() &&
      root["current-context"].IsScalar()) {
    context_name = root["current-context"].Scalar();
  }
  if (context_name.empty()) return absl::InvalidArgumentError("current-context: not set");
  absl::StatusOr<Entry> context_entry = Named(root, "contexts", context_name, "context");
  if (!context_entry.ok()) return context_entry.status();

  KubeConfig config;
  absl::StatusOr<std::string> cluster_name = context_entry->String("cluster");
  absl::StatusOr<std::string> user_name = context_entry->String("user");
  absl::StatusOr<std::string> namespace_name = context_entry->String("namespace");
  for (const auto* field : {&cluster_name, &user_name, &namespace_name}) {
    if (!field->ok()) return field->status();
  }
  if (cluster_name->empty()) {
    return absl::InvalidArgumentError(context_entry->Key("cluster") + ": required");
  }
  config.namespace_name = *namespace_name;

  absl::StatusOr<Entry> cluster = Named(root, "clusters", *cluster_name, "cluster");
  if (!cluster.ok()) return cluster.status();
  absl::StatusOr<std::string> server = cluster->String("server");
  if (!server.ok()) return server.status();
  if (server->empty()) return absl::InvalidArgumentError(cluster->Key("server") + ": required");
  config.server = *server;
  absl::StatusOr<std::string> ca = cluster->Data("certificate-authority", base);
  if (!ca.ok()) return ca.status();
  config.certificate_authority_pem = *ca;
  if (cluster->Has("insecure-skip-tls-verify")) {
    absl::StatusOr<std::string> insecure = cluster->String("insecure-skip-tls-verify");
    if (!insecure.ok()) return insecure.status();
    if (*insecure != "true" && *insecure != "false") {
      return absl::InvalidArgumentError(cluster->Key("insecure-skip-tls-verify") +
                                        ": not a boolean");
    }
    config.insecure_skip_tls_verify = *insecure == "true";
  }

  if (user_name->empty()) return config;  // anonymous
  absl::StatusOr<Entry> user = Named(root, "users", *user_name, "user");
  if (!user.ok()) return user.status();
  for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
    if (user->Has(unsupported)) {
      return absl::InvalidArgumentError(user->Key(unsupported) +
                                        ": not supported (use a token or a client certificate)");
    }
  }
  absl::StatusOr<std::string> token = user->String("token");
  absl::StatusOr<std::string> token_file = user->String("tokenFile");
  absl::StatusOr<std::string> certificate = user->Data("client-certificate", base);
  absl::StatusOr<std::string> key = user->Data("client-key", base);
  for (const auto* field : {&token, &token_file, &certificate, &key}) {
    if (!field->ok()) return field->status();
  }
  config.token = *token;
  // Like kubectl, a token given inline wins over a token file.
  if (config.token.empty() && !token_file->empty()) {
    config.token_file = (base / *token_file).string();
  }
  if (certificate->empty() != key->empty()) {
    return absl::InvalidArgumentError(
        user->Key(certificate->empty() ? "client-certificate" : "client-key") + ": required with " +
        (certificate->empty() ? "client-key" : "client-certificate"));
  }
  config.client_certificate_pem = *certificate;
  config.client_key_pem = *key;
  return config;
}

}  // namespace

absl::StatusOr<KubeConfig> LoadInClusterConfig(absl::string_view service_account_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::FailedPreconditionError(
        "not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  }
  const std::filesystem::path dir(std::string{service_account_dir});
  KubeConfig config;
  const absl::string_view host_view(host);
  // An IPv6 address is bracketed in a URL.
  config.server = absl::StrCat("https://",
                               host_view.find(':') == absl::string_view::npos
                                   ? std::string(host_view)
                                   : absl::StrCat("[", host_view, "]"),
                               ":", port);
  absl::StatusOr<std::string> ca = ReadFile((dir / "ca.crt").string());
  if (!ca.ok()) return absl::FailedPreconditionError(ca.status().message());
  config.certificate_authority_pem = *ca;
  config.token_file = (dir / "token").string();
  absl::StatusOr<std::string> token = ReadFile(config.token_file);
  if (!token.ok()) return absl::FailedPreconditionError(token.status().message());
  absl::StatusOr<std::string> namespace_name = ReadFile((dir / "namespace").string());
  if (!namespace_name.ok()) return absl::FailedPreconditionError(namespace_name.status().message());
  config.namespace_name = std::string(absl::StripAsciiWhitespace(*namespace_name));
  return config;
}

absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, absl::string_view context) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<KubeConfig> config;
  try {
    config = FromKubeconfig(YAML::Load(*text), std::filesystem::path(path).parent_path(), context);
  } catch (const YAML::Exception& error) {
    config = absl::InvalidArgumentError(error.what());
  }
  if (config.ok() || config.status().code() != absl::StatusCode::kInvalidArgument) return config;
  return absl::InvalidArgumentError(
      absl::StrCat("kubeconfig ", path, ": ", config.status().message()));
}

}  // namespace eofaas::control::k8s
