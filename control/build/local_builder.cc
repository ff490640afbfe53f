#include "control/build/local_builder.h"

#include <openssl/evp.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string_view>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/subprocess.h"

namespace eofaas::control {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kArtifactPrefix = "sha256:";
// Present in a bundle once its check passed: a later identical build has nothing to do.
constexpr const char* kBuiltMarker = ".eofaas-built";
// Renders are written under this prefix and renamed into place when complete.
constexpr std::string_view kStagingPrefix = ".staging-";
// Lines of checker output repeated in status.message.
constexpr size_t kMessageLines = 6;
// Scratch space of a dependency install, in the bundle root and removed once it ends.
constexpr std::string_view kScratchDir = ".eofaas-scratch";
// Set in a build command's environment to the canonical bundles directory. Inherited by the
// command's descendants, it finds them all after a crash, unlike a parent-death signal, which
// reaches only the command itself.
constexpr absl::string_view kStepMarkerName = "EOFAAS_BUILD_BUNDLES_DIR";
// Environment variables a build command inherits, besides its fixed PATH, HOME and LANG.
constexpr const char* kPassedEnvironment[] = {"http_proxy", "https_proxy", "no_proxy",
                                              "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"};

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  // Length-prefixed, so that ("ab","c") and ("a","bc") differ.
  void Add(absl::string_view bytes) {
    uint64_t size = bytes.size();
    EVP_DigestUpdate(ctx_, &size, sizeof(size));
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
  }
  std::string Hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_, digest, &length);
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
    return hex;
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

absl::Status WriteFile(const fs::path& path, absl::string_view content) {
  std::error_code error;
  fs::create_directories(path.parent_path(), error);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (error || !out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// The template's files, relative path → content, without caches. Symbolic links to files (a
// template may share runtime files with another) are read through and keep their own path.
absl::StatusOr<std::map<std::string, std::string>> TemplateFiles(const Template& tmpl) {
  std::map<std::string, std::string> files;
  std::error_code error;
  for (fs::recursive_directory_iterator it(tmpl.dir, error), end; !error && it != end;
       it.increment(error)) {
    if (!it->is_regular_file(error)) continue;
    std::string relative = it->path().lexically_relative(tmpl.dir).string();
    if (absl::StrContains(relative, "__pycache__") || absl::StrContains(relative, "node_modules")) {
      continue;
    }
    files.emplace(relative, ReadFile(it->path()));
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("template ", tmpl.name, ": cannot read ", tmpl.dir, ": ", error.message()));
  }
  return files;
}

std::vector<std::string> Lines(absl::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

// The entry marking the build commands of `bundles_dir`: control planes with different data dirs
// on one machine have different markers.
std::string StepMarker(const std::string& bundles_dir) {
  std::error_code error;
  const fs::path absolute = fs::absolute(bundles_dir, error);
  const fs::path canonical = fs::weakly_canonical(absolute, error);
  return absl::StrCat(kStepMarkerName, "=", (error ? absolute : canonical).string());
}

// Kills every process group holding a process marked `marker` and returns once none is left (a
// process forked meanwhile carries the marker too, and the next round finds it). After 10 s it
// logs an error and returns all the same: a process stuck in the kernel does not hold up the
// control plane for good.
void KillLeftoverSteps(const std::string& marker) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  for (bool first = true;; first = false) {
    std::set<pid_t> groups;
    for (const common::FoundProcess& process : common::FindProcessesWithEnv(marker)) {
      if (process.stat.pgrp > 0) groups.insert(process.stat.pgrp);
    }
    if (groups.empty()) return;
    if (first) {
      common::LogWarning("killing the build commands a previous run left running (", groups.size(),
                         " process groups, ", marker, ")");
    }
    if (absl::Now() > give_up) {
      common::LogError("build commands of a previous run survive SIGKILL (", groups.size(),
                       " process groups): builds go on beside them");
      return;
    }
    for (pid_t pgid : groups) kill(-pgid, SIGKILL);
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace

LocalBuilder::LocalBuilder(std::string bundles_dir, absl::Duration check_timeout)
    : bundles_dir_(std::move(bundles_dir)),
      check_timeout_(check_timeout),
      step_marker_(StepMarker(bundles_dir_)) {
  // No build runs yet: build commands and staging directories are what a crash left behind. The
  // commands go first, lest one still writes into a bundle a new build is about to use.
  KillLeftoverSteps(step_marker_);
  std::error_code error;
  fs::create_directories(bundles_dir_, error);
  for (fs::directory_iterator it(bundles_dir_, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().filename().string().starts_with(kStagingPrefix)) {
      std::error_code ignored;
      fs::remove_all(it->path(), ignored);
    }
  }
}

absl::StatusOr<Bundle> LocalBuilder::Render(const eofaas::v1::Function& function,
                                            const Template& tmpl, const BuildLogSink& log) {
  auto listed = TemplateFiles(tmpl);
  if (!listed.ok()) return listed.status();
  const std::map<std::string, std::string>& template_files = *listed;
  std::map<std::string, std::string> user_files(function.files().begin(), function.files().end());
  Sha256 hash;
  hash.Add(tmpl.name);
  for (const auto& [path, content] : template_files) hash.Add(path), hash.Add(content);
  hash.Add("function/");
  for (const auto& [path, content] : user_files) hash.Add(path), hash.Add(content);
  Bundle bundle;
  bundle.artifact = absl::StrCat(kArtifactPrefix, hash.Hex());
  bundle.dir = BundleDir(bundle.artifact);
  std::error_code error;
  if (fs::exists(bundle.dir, error)) {
    log({absl::StrCat("bundle ", bundle.artifact, " exists: reused")});
    return bundle;
  }
  // Written aside and renamed into place, so a bundle directory is always complete.
  std::random_device random;
  fs::path staging =
      fs::path(bundles_dir_) / absl::StrFormat("%s%08x", std::string(kStagingPrefix), random());
  absl::Status status;
  for (const auto& [path, content] : template_files) {
    if (status.ok()) status = WriteFile(staging / path, content);
  }
  for (const auto& [path, content] : user_files) {
    if (status.ok()) status = WriteFile(staging / "function" / path, content);
  }
  if (status.ok()) fs::rename(staging, bundle.dir, error);
  if (!status.ok() || error) {
    fs::remove_all(staging, error);
    if (fs::exists(bundle.dir, error)) return bundle;  // an identical render won the race
    return status.ok() ? absl::InternalError(absl::StrCat("cannot create ", bundle.dir)) : status;
  }
  log({absl::StrCat("rendered ", template_files.size(), " template files and ", user_files.size(),
                    " function files into bundle ", bundle.artifact)});
  return bundle;
}

absl::Status LocalBuilder::Build(const eofaas::v1::Function& function, const Bundle& bundle,
                                 const Template& tmpl, const BuildLogSink& log,
                                 const std::atomic<bool>& cancel) {
  {
    std::unique_lock lock(mu_);
    while (building_.count(bundle.artifact)) {
      if (cancel) return absl::CancelledError("build cancelled");
      building_done_.wait_for(lock, std::chrono::milliseconds(20));
    }
    building_.insert(bundle.artifact);
  }
  absl::Cleanup done = [this, &bundle] {
    std::lock_guard lock(mu_);
    building_.erase(bundle.artifact);
    building_done_.notify_all();
  };
  return BuildAlone(bundle, tmpl, log, cancel);
}

absl::Status LocalBuilder::BuildAlone(const Bundle& bundle, const Template& tmpl,
                                      const BuildLogSink& log, const std::atomic<bool>& cancel) {
  fs::path marker = fs::path(bundle.dir) / kBuiltMarker;
  std::error_code error;
  if (fs::exists(marker, error)) {
    log({absl::StrCat("bundle ", bundle.artifact, " passed its check before: nothing to build")});
    return absl::OkStatus();
  }
  fs::path function_dir = fs::path(bundle.dir) / "function";
  fs::path installed = function_dir / tmpl.dependencies.directory;
  std::vector<std::string> sources;
  for (fs::recursive_directory_iterator it(function_dir, error), end; !error && it != end;
       it.increment(error)) {
    // What a dependency install left behind (a build that crashed before its marker) is not the
    // user's code.
    if (!tmpl.dependencies.directory.empty() && it->path() == installed) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(error)) continue;
    for (const auto& extension : tmpl.check_extensions) {
      if (it->path().extension() == extension) {
        sources.push_back(it->path().lexically_relative(bundle.dir).string());
      }
    }
  }
  if (error)
    return absl::InternalError(absl::StrCat("cannot list ", bundle.dir, ": ", error.message()));
  std::sort(sources.begin(), sources.end());
  // The check runs over the sources in batches, as xargs does: the kernel limits a command's
  // arguments (2 MiB or so, with its environment), and each command is a line of the build log.
  constexpr size_t kMaxCheckArgumentBytes = 128 << 10;
  for (size_t next = 0; !tmpl.check_command.empty() && next < sources.size();) {
    std::vector<std::string> argv = tmpl.check_command;
    size_t bytes = 0;
    do {
      bytes += sources[next].size() + 1;
      argv.push_back(sources[next++]);
    } while (next < sources.size() && bytes + sources[next].size() + 1 <= kMaxCheckArgumentBytes);
    if (auto status = RunStep(tmpl.check_command.front(), std::move(argv), bundle, log, cancel);
        !status.ok()) {
      return status;
    }
  }
  // Installed before the marker is written: a bundle that passed holds its dependencies, so an
  // identical build later reuses them without installing again.
  if (auto status = InstallDependencies(bundle, tmpl, log, cancel); !status.ok()) return status;
  if (auto status = WriteFile(marker, bundle.artifact); !status.ok()) return status;
  log({absl::StrCat("checked ", sources.size(), " source files: ok")});
  return absl::OkStatus();
}

absl::Status LocalBuilder::InstallDependencies(const Bundle& bundle, const Template& tmpl,
                                               const BuildLogSink& log,
                                               const std::atomic<bool>& cancel) {
  const Template::Dependencies& dependencies = tmpl.dependencies;
  std::error_code error;
  if (dependencies.command.empty() ||
      !fs::is_regular_file(fs::path(bundle.dir) / "function" / dependencies.manifest, error)) {
    return absl::OkStatus();
  }
  // Beside function/, so that the command can build the installed tree aside and rename it into
  // place; the check never sees a half-installed tree.
  fs::path scratch = fs::path(bundle.dir) / kScratchDir;
  fs::remove_all(scratch, error);
  fs::create_directory(scratch, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", scratch.string(), ": ", error.message()));
  }
  std::vector<std::string> argv = dependencies.command;
  argv.push_back(absl::StrCat("function/", dependencies.manifest));
  argv.push_back(absl::StrCat("function/", dependencies.directory));
  argv.push_back(std::string(kScratchDir));
  absl::Status status = RunStep(absl::StrCat(dependencies.manifest, " install"), std::move(argv),
                                bundle, log, cancel);
  fs::remove_all(scratch, error);
  return status;
}

absl::Status LocalBuilder::RunStep(absl::string_view step, std::vector<std::string> argv,
                                   const Bundle& bundle, const BuildLogSink& log,
                                   const std::atomic<bool>& cancel) {
  common::SpawnOptions options;
  options.argv = std::move(argv);
  options.cwd = bundle.dir;
  options.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", step_marker_};
  // A dependency install reaches its package index the way the control plane would.
  for (const char* name : kPassedEnvironment) {
    if (const char* value = std::getenv(name)) {
      options.env.push_back(absl::StrCat(name, "=", value));
    }
  }
  log({absl::StrCat("$ ", absl::StrJoin(options.argv, " "))});
  auto result = common::Run(options, check_timeout_, &cancel);
  if (!result.ok()) return result.status();
  std::vector<std::string> output = Lines(result->output);
  log(output);
  if (result->cancelled) return absl::CancelledError("build cancelled");
  if (result->timed_out) {
    return absl::FailedPreconditionError(absl::StrCat("build failed: ", step, " timed out after ",
                                                      absl::FormatDuration(check_timeout_)));
  }
  if (!result->ok()) {
    size_t first = output.size() > kMessageLines ? output.size() - kMessageLines : 0;
    std::vector<std::string> tail(output.begin() + static_cast<long>(first), output.end());
    return absl::FailedPreconditionError(
        absl::StrCat("build failed: ", step, " ",
                     result->signal ? absl::StrCat("killed by signal ", result->signal)
                                    : absl::StrCat("exited with code ", result->exit_code),
                     tail.empty() ? "" : ":\n", absl::StrJoin(tail, "\n")));
  }
  return absl::OkStatus();
}

std::string LocalBuilder::BundleDir(const std::string& artifact) const {
  absl::string_view hex = artifact;
  if (absl::StartsWith(hex, kArtifactPrefix)) hex.remove_prefix(kArtifactPrefix.size());
  return (fs::path(bundles_dir_) / std::string(hex)).string();
}

void LocalBuilder::CollectGarbage(const std::set<std::string>& live) {
  std::set<std::string> live_dirs;
  for (const auto& artifact : live) live_dirs.insert(BundleDir(artifact));
  std::error_code error;
  for (fs::directory_iterator it(bundles_dir_, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().filename().string().starts_with(kStagingPrefix)) continue;
    std::error_code ignored;
    if (!live_dirs.count(it->path().string())) fs::remove_all(it->path(), ignored);
  }
}

}  // namespace eofaas::control
