// The registry: where a function's image lives, and the pull secret that lets kubelet and the
// build Jobs in.
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "control/k8s/render.h"
#include "control/k8s/yaml.h"

namespace eofaas::control::k8s {
namespace {

// A JSON string literal of `value` (UTF-8 passes through; control characters are escaped).
std::string JsonString(absl::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

}  // namespace

std::string ImageReference(const RegistryConfig& registry, absl::string_view function,
                           absl::string_view artifact) {
  std::string tag = absl::StrReplaceAll(artifact, {{":", "-"}});
  if (registry.repository.empty()) return absl::StrCat(registry.server, "/", function, ":", tag);
  return absl::StrCat(registry.server, "/", registry.repository, "/", function, ":", tag);
}

absl::StatusOr<YAML::Node> RenderRegistrySecret(absl::string_view namespace_name,
                                                const RegistryConfig& registry,
                                                const RegistryCredentials& credentials) {
  // Messages name the field only: a value here may be a secret.
  if (registry.server.empty()) return absl::InvalidArgumentError("registry.server: required");
  if (registry.secret_name.empty()) {
    return absl::InvalidArgumentError("registry.secret_name: required");
  }
  if (credentials.username.empty()) {
    return absl::InvalidArgumentError("registry credentials: username is empty");
  }
  if (credentials.password.empty()) {
    return absl::InvalidArgumentError("registry credentials: password is empty");
  }
  const std::string auth =
      absl::Base64Escape(absl::StrCat(credentials.username, ":", credentials.password));
  const std::string config = absl::StrCat("{\"auths\":{", JsonString(registry.server),
                                          ":{\"username\":", JsonString(credentials.username),
                                          ",\"password\":", JsonString(credentials.password),
                                          ",\"auth\":", JsonString(auth), "}}}");

  YAML::Node secret;
  secret["apiVersion"] = String("v1");
  secret["kind"] = String("Secret");
  secret["metadata"]["name"] = String(registry.secret_name);
  secret["metadata"]["namespace"] = String(namespace_name);
  secret["metadata"]["labels"]["app.kubernetes.io/component"] = String("registry-credentials");
  secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] = String("eofaas");
  secret["type"] = String("kubernetes.io/dockerconfigjson");
  secret["data"][".dockerconfigjson"] = String(absl::Base64Escape(config));
  return secret;
}

}  // namespace eofaas::control::k8s
