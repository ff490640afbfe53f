#include "proxy/plan/object_list.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

// Compares a1+a2 with b1+b2 in byte order without building either string.
int CompareJoined(absl::string_view a1, absl::string_view a2, absl::string_view b1,
                  absl::string_view b2) {
  while (true) {
    if (a1.empty()) std::swap(a1, a2);
    if (b1.empty()) std::swap(b1, b2);
    if (a1.empty() || b1.empty()) return a1.empty() ? (b1.empty() ? 0 : -1) : 1;
    size_t n = std::min(a1.size(), b1.size());
    if (int c = a1.substr(0, n).compare(b1.substr(0, n)); c != 0) return c;
    a1.remove_prefix(n);
    b1.remove_prefix(n);
  }
}

}  // namespace

std::string ObjectView::uri() const { return absl::StrCat(prefix, name); }

uint32_t ObjectList::AddPrefix(std::string prefix) {
  prefixes_.push_back(std::move(prefix));
  return static_cast<uint32_t>(prefixes_.size() - 1);
}

void ObjectList::Append(uint32_t prefix, absl::string_view name, std::optional<int64_t> size,
                        absl::string_view etag, bool ranges_supported) {
  if (etag.size() > kMaxEtagBytes) etag = {};
  name = name.substr(0, std::numeric_limits<uint16_t>::max());
  const size_t bytes = name.size() + etag.size();
  // Offsets within a block fit 16 bits: an entry starts a new block unless it ends before
  // kBlockBytes (an oversized entry has a block of its own, at offset 0).
  if (blocks_.empty() || blocks_.back().size() + bytes >= kBlockBytes) {
    blocks_.emplace_back().reserve(std::max(kBlockBytes, bytes));
  }
  std::string& block = blocks_.back();
  Record record;
  record.text = (uint64_t{blocks_.size() - 1} << 16) | block.size();
  record.size = size.value_or(-1);
  record.prefix = prefix;
  record.name_size = static_cast<uint16_t>(name.size());
  record.etag_size = static_cast<uint8_t>(etag.size());
  record.ranges_supported = ranges_supported;
  block.append(name.data(), name.size());
  block.append(etag.data(), etag.size());
  records_.push_back(record);
}

absl::string_view ObjectList::Text(const Record& record) const {
  return absl::string_view(blocks_[record.text >> 16])
      .substr(record.text & 0xffff, record.name_size + record.etag_size);
}

void ObjectList::Append(const ListedObject& object) {
  absl::string_view uri = object.uri;
  size_t split = uri.rfind('/') + 1;  // 0 when there is no '/'
  uint32_t prefix = AddPrefix(std::string(uri.substr(0, split)));
  Append(prefix, uri.substr(split), object.size, object.etag, object.ranges_supported);
}

ObjectView ObjectList::operator[](size_t index) const {
  const Record& record = records_[index];
  ObjectView view;
  view.prefix = prefixes_[record.prefix];
  absl::string_view text = Text(record);
  view.name = text.substr(0, record.name_size);
  view.etag = text.substr(record.name_size);
  if (record.size >= 0) view.size = record.size;
  view.ranges_supported = record.ranges_supported;
  return view;
}

void ObjectList::SortFrom(size_t begin) {
  std::sort(records_.begin() + begin, records_.end(), [&](const Record& a, const Record& b) {
    absl::string_view a_name = Text(a).substr(0, a.name_size);
    absl::string_view b_name = Text(b).substr(0, b.name_size);
    if (a.prefix == b.prefix) return a_name < b_name;
    return CompareJoined(prefixes_[a.prefix], a_name, prefixes_[b.prefix], b_name) < 0;
  });
}

void ObjectList::ShrinkToFit() {
  prefixes_.shrink_to_fit();
  blocks_.shrink_to_fit();
  if (!blocks_.empty()) blocks_.back().shrink_to_fit();
  records_.shrink_to_fit();
}

}  // namespace eofaas::proxy
