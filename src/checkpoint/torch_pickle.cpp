// A restricted reader for the pickle that torch.save() writes for a
// state_dict. Python's pickle can run arbitrary code on load; this reader
// knows a handful of opcodes and only the globals a state_dict needs
// (OrderedDict, torch._utils._rebuild_tensor_v2, storage types) and rejects
// everything else, so loading an untrusted checkpoint executes nothing.
#include <cstring>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <variant>

#include "checkpoint/state_dict.h"

namespace dfd {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct StorageRef {
  std::string key;
  DType dtype;
  int64_t numel;
};
struct TensorRef {
  StorageRef storage;
  int64_t offset;
  std::vector<int64_t> size, stride;
};
struct Global {
  std::string module, name;
};
struct Mark {};
using List = std::vector<ValuePtr>;
using Dict = std::vector<std::pair<ValuePtr, ValuePtr>>;

struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, List /*tuple or list*/, Dict, Global,
               StorageRef, TensorRef, Mark>
      v;
  bool is_tuple = false;
};

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("checkpoint pickle: " + what);
}

ValuePtr make(decltype(Value::v) v) {
  auto p = std::make_shared<Value>();
  p->v = std::move(v);
  return p;
}

DType storage_dtype(const Global& g) {
  if (g.module != "torch") fail("unsupported storage type " + g.module + "." + g.name);
  static const std::unordered_map<std::string, DType> m = {
      {"FloatStorage", DType::F32}, {"DoubleStorage", DType::F64}, {"HalfStorage", DType::F16},
      {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ByteStorage", DType::U8}, {"BoolStorage", DType::Bool}};
  auto it = m.find(g.name);
  if (it == m.end()) fail("unsupported storage type torch." + g.name);
  return it->second;
}

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& d) : d_(d) {}

  ValuePtr run() {
    while (true) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;  // PROTO
        case '.': {              // STOP
          if (stack_.size() != 1) fail("malformed stack at STOP");
          return stack_.back();
        }
        case 'c': {  // GLOBAL
          std::string mod = line(), name = line();
          push(make(Global{mod, name}));
          break;
        }
        case '}': push(make(Dict{})); break;
        case ']': push(make(List{})); break;
        case ')': push_tuple({}); break;
        case '(': push(make(Mark{})); break;
        case 'N': push(make(std::monostate{})); break;
        case 0x88: push(make(true)); break;
        case 0x89: push(make(false)); break;
        case 'K': push(make(int64_t(u8()))); break;
        case 'M': push(make(int64_t(uint16_t(u8() | (u8() << 8))))); break;
        case 'J': push(make(int64_t(int32_t(u32())))); break;
        case 0x8a: {  // LONG1
          uint8_t n = u8();
          if (n > 8) fail("integer too large");
          int64_t v = 0;
          for (int i = 0; i < n; ++i) v |= int64_t(u8()) << (8 * i);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v -= int64_t(1) << (8 * n);
          push(make(v));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian double
          uint64_t b = 0;
          for (int i = 0; i < 8; ++i) b = (b << 8) | u8();
          double d;
          std::memcpy(&d, &b, 8);
          push(make(d));
          break;
        }
        case 'X': push(make(bytes(u32()))); break;                     // BINUNICODE
        case 0x8c: push(make(bytes(u8()))); break;                     // SHORT_BINUNICODE
        case 'T': push(make(bytes(u32()))); break;                     // BINSTRING
        case 'U': push(make(bytes(u8()))); break;                      // SHORT_BINSTRING
        case 'q': memo_[u8()] = top(); break;                          // BINPUT
        case 'r': memo_[u32()] = top(); break;                         // LONG_BINPUT
        case 'h': push(memo(u8())); break;                             // BINGET
        case 'j': push(memo(u32())); break;                            // LONG_BINGET
        case 0x94: memo_[memo_.size()] = top(); break;                 // MEMOIZE
        case 't': push_tuple(pop_to_mark()); break;                    // TUPLE
        case 0x85: { auto a = pop(); push_tuple({a}); break; }          // TUPLE1
        case 0x86: { auto b = pop(), a = pop(); push_tuple({a, b}); break; }
        case 0x87: { auto c = pop(), b = pop(), a = pop(); push_tuple({a, b, c}); break; }
        case 'a': { auto v = pop(); list_of(top()).push_back(v); break; }  // APPEND
        case 'e': {  // APPENDS
          auto items = pop_to_mark();
          auto& l = list_of(top());
          l.insert(l.end(), items.begin(), items.end());
          break;
        }
        case 's': { auto v = pop(), k = pop(); dict_of(top()).push_back({k, v}); break; }  // SETITEM
        case 'u': {  // SETITEMS
          auto items = pop_to_mark();
          if (items.size() % 2) fail("odd SETITEMS");
          auto& d = dict_of(top());
          for (size_t i = 0; i < items.size(); i += 2) d.push_back({items[i], items[i + 1]});
          break;
        }
        case 'b': pop(); break;  // BUILD: state (OrderedDict._metadata) is not needed
        case 'Q': push(persistent(pop())); break;  // BINPERSID
        case 'R': {                                 // REDUCE
          auto args = pop(), fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop(), cls = pop();
          push(reduce(cls, args));
          break;
        }
        default: fail("unsupported opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
      }
    }
  }

 private:
  const std::vector<uint8_t>& d_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::unordered_map<uint32_t, ValuePtr> memo_;

  static std::string hex(uint8_t b) {
    const char* h = "0123456789abcdef";
    return {h[b >> 4], h[b & 15]};
  }
  uint8_t u8() {
    if (pos_ >= d_.size()) fail("truncated");
    return d_[pos_++];
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(u8()) << (8 * i);
    return v;
  }
  std::string bytes(size_t n) {
    if (n > d_.size() - pos_) fail("truncated string");
    std::string s(reinterpret_cast<const char*>(d_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::string line() {
    std::string s;
    for (char c; (c = char(u8())) != '\n';) s += c;
    return s;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  void push_tuple(List l) {
    auto v = make(std::move(l));
    v->is_tuple = true;
    push(v);
  }
  ValuePtr pop() {
    if (stack_.empty()) fail("stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  ValuePtr memo(uint32_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("bad memo reference");
    return it->second;
  }
  List pop_to_mark() {
    List items;
    while (true) {
      auto v = pop();
      if (std::holds_alternative<Mark>(v->v)) break;
      items.push_back(v);
    }
    return List(items.rbegin(), items.rend());
  }
  static List& list_of(const ValuePtr& v) {
    if (auto* l = std::get_if<List>(&v->v)) return *l;
    fail("append to a non-list");
  }
  static Dict& dict_of(const ValuePtr& v) {
    if (auto* d = std::get_if<Dict>(&v->v)) return *d;
    fail("setitem on a non-dict");
  }
  static const List& tuple(const ValuePtr& v, size_t min_size, const char* what) {
    auto* l = std::get_if<List>(&v->v);
    if (!l || l->size() < min_size) fail(std::string("bad arguments for ") + what);
    return *l;
  }
  static int64_t integer(const ValuePtr& v) {
    if (auto* i = std::get_if<int64_t>(&v->v)) return *i;
    fail("expected an integer");
  }
  static std::vector<int64_t> ints(const ValuePtr& v) {
    std::vector<int64_t> out;
    auto* l = std::get_if<List>(&v->v);
    if (!l) fail("expected a tuple of integers");
    for (auto& e : *l) out.push_back(integer(e));
    return out;
  }

  ValuePtr persistent(const ValuePtr& pid) {
    const auto& t = tuple(pid, 5, "persistent id");
    auto* kind = std::get_if<std::string>(&t[0]->v);
    auto* type = std::get_if<Global>(&t[1]->v);
    auto* key = std::get_if<std::string>(&t[2]->v);
    if (!kind || *kind != "storage" || !type || !key) fail("unsupported persistent id");
    return make(StorageRef{*key, storage_dtype(*type), integer(t[4])});
  }

  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args) {
    auto* g = std::get_if<Global>(&fn->v);
    if (!g) fail("REDUCE on a non-global");
    const std::string qual = g->module + "." + g->name;
    if (qual == "collections.OrderedDict") return make(Dict{});
    if (qual == "torch._utils._rebuild_tensor_v2") {
      const auto& a = tuple(args, 4, qual.c_str());
      auto* s = std::get_if<StorageRef>(&a[0]->v);
      if (!s) fail("tensor without storage");
      return make(TensorRef{*s, integer(a[1]), ints(a[2]), ints(a[3])});
    }
    if (qual == "torch._utils._rebuild_parameter") {
      const auto& a = tuple(args, 1, qual.c_str());
      return a[0];
    }
    fail("refusing to call " + qual + " (not part of a plain state_dict)");
  }
};

// Copies a possibly strided view out of its storage into contiguous bytes.
TensorData materialize(const TensorRef& t, const std::vector<uint8_t>& storage) {
  TensorData out;
  out.dtype = t.storage.dtype;
  out.shape = t.size;
  const size_t es = dtype_size(out.dtype);
  if (t.size.size() != t.stride.size()) fail("size/stride rank mismatch");
  int64_t numel = 1, max_index = t.offset;
  for (size_t i = 0; i < t.size.size(); ++i) {
    if (t.size[i] < 0 || t.stride[i] < 0) fail("negative size or stride");
    numel *= t.size[i];
    if (t.size[i] > 0) max_index += (t.size[i] - 1) * t.stride[i];
  }
  if (t.offset < 0 || (numel > 0 && size_t(max_index + 1) * es > storage.size()))
    fail("tensor reaches past the end of storage " + t.storage.key + " (truncated file?)");
  out.bytes.resize(size_t(numel) * es);
  const size_t rank = t.size.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t n = 0; n < numel; ++n) {
    int64_t src = t.offset;
    for (size_t i = 0; i < rank; ++i) src += idx[i] * t.stride[i];
    std::memcpy(out.bytes.data() + size_t(n) * es, storage.data() + size_t(src) * es, es);
    for (size_t i = rank; i-- > 0;) {
      if (++idx[i] < t.size[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

ValuePtr parse(const std::vector<uint8_t>& pickle) {
  Reader r(pickle);
  return r.run();
}

}  // namespace

std::vector<std::string> pickle_storage_keys(const std::vector<uint8_t>& pickle) {
  auto root = parse(pickle);
  std::vector<std::string> keys;
  auto* d = std::get_if<Dict>(&root->v);
  if (!d) fail("top-level object is not a dict (is this a whole pickled model rather than a state_dict?)");
  for (auto& [k, v] : *d)
    if (auto* t = std::get_if<TensorRef>(&v->v)) keys.push_back(t->storage.key);
  return keys;
}

StateDict parse_state_dict_pickle(const std::vector<uint8_t>& pickle,
                                  const std::map<std::string, std::vector<uint8_t>>& storages) {
  auto root = parse(pickle);
  auto* d = std::get_if<Dict>(&root->v);
  if (!d) fail("top-level object is not a dict (is this a whole pickled model rather than a state_dict?)");
  StateDict out;
  for (auto& [k, v] : *d) {
    auto* name = std::get_if<std::string>(&k->v);
    if (!name) fail("state_dict key is not a string");
    auto* t = std::get_if<TensorRef>(&v->v);
    if (!t) fail("entry '" + *name + "' is not a tensor");
    auto it = storages.find(t->storage.key);
    if (it == storages.end()) fail("storage " + t->storage.key + " missing from the archive");
    out[*name] = materialize(*t, it->second);
  }
  return out;
}

}  // namespace dfd
