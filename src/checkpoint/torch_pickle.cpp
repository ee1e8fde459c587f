// The restricted pickle interpreter for torch.save() state dicts (see
// torch_pickle.h). Values live in an arena owned by the reader and refer to
// each other by plain pointers: freeing is flat (no recursion, so no stack
// overflow however deep the nesting) and a cycle made through the memo
// cannot leak.
#include "checkpoint/torch_pickle.h"

#include <cstring>
#include <deque>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <variant>

#include "checkpoint/checked_math.h"
#include "checkpoint/limits.h"

namespace dfd {
namespace {

// Strings the reader keeps beyond one opcode (names of globals, storage
// keys, state-dict keys) are bounded so that memo references cannot
// multiply a large string into many copies.
constexpr size_t kMaxNameLength = 4096;

struct Value;
using List = std::vector<Value*>;
using Dict = std::vector<std::pair<Value*, Value*>>;

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

struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, List /*tuple or list*/, Dict, Global,
               StorageRef, TensorRef, Mark>
      v;
  bool is_tuple = false;
  int depth = 0;  // containers nested inside this one (an upper bound)
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("checkpoint pickle: " + what); }

DType storage_dtype(const Global& g) {
  static const std::unordered_map<std::string, DType> m = {
      {"FloatStorage", DType::F32}, {"DoubleStorage", DType::F64}, {"HalfStorage", DType::F16},
      {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ByteStorage", DType::U8}, {"BoolStorage", DType::Bool}};
  auto it = m.find(g.name);
  if (g.module != "torch" || it == m.end()) fail("unsupported storage type " + g.module + "." + g.name);
  return it->second;
}

std::string hex(uint8_t b) {
  const char* h = "0123456789abcdef";
  return {h[b >> 4], h[b & 15]};
}

// Reads the opcode stream. Each method is one opcode family; run() dispatches.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : d_(data), n_(size) {
    if (size > limits::kMaxPickleBytes)
      fail(std::to_string(size) + " bytes, more than the limit of " + std::to_string(limits::kMaxPickleBytes));
  }

  Value* run() {
    while (true) {
      const uint8_t op = u8();
      if (op == '.') {  // STOP
        if (stack_.size() != 1) fail("malformed stack at STOP");
        return stack_.back();
      }
      if (!scalar_op(op) && !container_op(op) && !memo_op(op) && !object_op(op))
        fail("unsupported opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
    }
  }

 private:
  const uint8_t* d_;
  size_t n_, pos_ = 0;
  std::deque<Value> arena_;  // owns every value; stable addresses
  std::vector<Value*> stack_;
  std::unordered_map<uint32_t, Value*> memo_;

  // --- opcode families -----------------------------------------------------
  bool scalar_op(uint8_t op) {
    switch (op) {
      case 0x80: u8(); return true;  // PROTO
      case 'N': push(make(std::monostate{})); return true;
      case 0x88: push(make(true)); return true;
      case 0x89: push(make(false)); return true;
      case 'K': push(make(int64_t(u8()))); return true;
      case 'M': { const int64_t lo = u8(); push(make(lo | int64_t(u8()) << 8)); return true; }
      case 'J': push(make(int64_t(int32_t(u32())))); return true;
      case 0x8a: push(make(long1())); return true;
      case 'G': push(make(binfloat())); return true;
      case 'X': case 'T': push(make(bytes(u32()))); return true;     // BINUNICODE, BINSTRING
      case 0x8c: case 'U': push(make(bytes(u8()))); return true;     // SHORT_BINUNICODE, SHORT_BINSTRING
      default: return false;
    }
  }

  bool container_op(uint8_t op) {
    switch (op) {
      case '}': push(make(Dict{})); return true;
      case ']': push(make(List{})); return true;
      case ')': push_tuple({}); return true;
      case '(': push(make(Mark{})); return true;
      case 't': push_tuple(pop_to_mark()); return true;  // TUPLE
      case 0x85: { auto a = pop(); push_tuple({a}); return true; }  // TUPLE1
      case 0x86: { auto b = pop(), a = pop(); push_tuple({a, b}); return true; }
      case 0x87: { auto c = pop(), b = pop(), a = pop(); push_tuple({a, b, c}); return true; }
      case 'a': { auto v = pop(); append(top(), {v}); return true; }  // APPEND
      case 'e': { auto items = pop_to_mark(); append(top(), items); return true; }  // APPENDS
      case 's': { auto v = pop(), k = pop(); set_items(top(), {k, v}); return true; }  // SETITEM
      case 'u': {  // SETITEMS
        auto items = pop_to_mark();
        if (items.size() % 2) fail("odd SETITEMS");
        set_items(top(), items);
        return true;
      }
      default: return false;
    }
  }

  bool memo_op(uint8_t op) {
    switch (op) {
      case 'q': memo_put(u8()); return true;        // BINPUT
      case 'r': memo_put(u32()); return true;       // LONG_BINPUT
      case 0x94: memo_put(uint32_t(memo_.size())); return true;  // MEMOIZE
      case 'h': push(memo_get(u8())); return true;  // BINGET
      case 'j': push(memo_get(u32())); return true; // LONG_BINGET
      default: return false;
    }
  }

  bool object_op(uint8_t op) {
    switch (op) {
      case 'c': {  // GLOBAL
        std::string mod = line(), name = line();
        push(make(Global{mod, name}));
        return true;
      }
      case 'b': pop(); return true;  // BUILD: state (OrderedDict._metadata) is not needed
      case 'Q': push(persistent(pop())); return true;  // BINPERSID
      case 'R': case 0x81: {  // REDUCE, NEWOBJ
        auto args = pop(), fn = pop();
        push(reduce(fn, args));
        return true;
      }
      default: return false;
    }
  }

  // --- bytes ---------------------------------------------------------------
  uint8_t u8() {
    if (pos_ >= n_) fail("truncated");
    return d_[pos_++];
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(u8()) << (8 * i);
    return v;
  }
  int64_t long1() {
    const uint8_t n = u8();
    if (n > 8) fail("integer too large");
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(u8()) << (8 * i);
    if (n > 0 && n < 8 && ((v >> (8 * n - 1)) & 1)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return int64_t(v);
  }
  double binfloat() {  // big-endian IEEE double
    uint64_t b = 0;
    for (int i = 0; i < 8; ++i) b = (b << 8) | u8();
    double d;
    std::memcpy(&d, &b, 8);
    return d;
  }
  std::string bytes(size_t n) {
    if (n > n_ - pos_) fail("truncated string");
    std::string s(reinterpret_cast<const char*>(d_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::string line() {
    std::string s;
    for (char c; (c = char(u8())) != '\n';) {
      if (s.size() >= kMaxNameLength) fail("global name longer than " + std::to_string(kMaxNameLength));
      s += c;
    }
    return s;
  }

  // --- values, stack, memo -------------------------------------------------
  template <class T>
  Value* make(T v) {
    if (arena_.size() >= limits::kMaxPickleValues)
      fail("more than " + std::to_string(limits::kMaxPickleValues) + " values");
    arena_.emplace_back();
    arena_.back().v = std::move(v);
    return &arena_.back();
  }
  void push(Value* v) {
    if (stack_.size() >= limits::kMaxPickleStack)
      fail("stack deeper than " + std::to_string(limits::kMaxPickleStack));
    stack_.push_back(v);
  }
  Value* pop() {
    if (stack_.empty()) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  void memo_put(uint32_t i) {
    if (memo_.size() >= limits::kMaxPickleMemo && !memo_.count(i))
      fail("more than " + std::to_string(limits::kMaxPickleMemo) + " memo entries");
    memo_[i] = top();
  }
  Value* memo_get(uint32_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("bad memo reference");
    return it->second;
  }
  List pop_to_mark() {
    List items;
    while (true) {
      Value* v = pop();
      if (std::holds_alternative<Mark>(v->v)) break;
      items.push_back(v);
    }
    return List(items.rbegin(), items.rend());
  }

  // --- containers (depth-bounded) ------------------------------------------
  void deepen(Value* container, const List& children) {
    for (Value* c : children) container->depth = std::max(container->depth, c->depth + 1);
    if (container->depth > limits::kMaxPickleDepth)
      fail("containers nested deeper than " + std::to_string(limits::kMaxPickleDepth));
  }
  void push_tuple(List l) {
    Value* v = make(List{});
    v->is_tuple = true;
    deepen(v, l);
    std::get<List>(v->v) = std::move(l);
    push(v);
  }
  void append(Value* list, const List& items) {
    auto* l = std::get_if<List>(&list->v);
    if (!l || list->is_tuple) fail("append to a non-list");
    deepen(list, items);
    l->insert(l->end(), items.begin(), items.end());
  }
  void set_items(Value* dict, const List& kv) {
    auto* d = std::get_if<Dict>(&dict->v);
    if (!d) fail("setitem on a non-dict");
    deepen(dict, kv);
    for (size_t i = 0; i + 1 < kv.size(); i += 2) d->push_back({kv[i], kv[i + 1]});
  }

  // --- the few objects a state dict holds ----------------------------------
  static const List& tuple(const Value* v, size_t min_size, const std::string& what) {
    auto* l = std::get_if<List>(&v->v);
    if (!l || l->size() < min_size) fail("bad arguments for " + what);
    return *l;
  }
  static int64_t integer(const Value* v) {
    if (auto* i = std::get_if<int64_t>(&v->v)) return *i;
    fail("expected an integer");
  }
  static std::vector<int64_t> ints(const Value* v) {
    auto* l = std::get_if<List>(&v->v);
    if (!l) fail("expected a tuple of integers");
    if (l->size() > size_t(limits::kMaxTensorRank))
      fail("tensor of " + std::to_string(l->size()) + " dimensions (at most " +
           std::to_string(limits::kMaxTensorRank) + ")");
    std::vector<int64_t> out;
    for (const Value* e : *l) out.push_back(integer(e));
    return out;
  }

  Value* persistent(const Value* pid) {
    const auto& t = tuple(pid, 5, "persistent id");
    auto* kind = std::get_if<std::string>(&t[0]->v);
    auto* type = std::get_if<Global>(&t[1]->v);
    auto* key = std::get_if<std::string>(&t[2]->v);
    if (!kind || *kind != "storage" || !type || !key) fail("unsupported persistent id");
    if (key->empty() || key->size() > 64 || key->find_first_of("/\\") != std::string::npos)
      fail("bad storage key");
    const int64_t numel = integer(t[4]);
    if (numel < 0 || numel > limits::kMaxTensorElements) fail("storage " + *key + " declares " + std::to_string(numel) + " elements");
    return make(StorageRef{*key, storage_dtype(*type), numel});
  }

  Value* reduce(const Value* fn, const Value* args) {
    auto* g = std::get_if<Global>(&fn->v);
    if (!g) fail("REDUCE on a non-global");
    const std::string qual = g->module + "." + g->name;
    if (qual == "collections.OrderedDict") return make(Dict{});
    if (qual == "torch._utils._rebuild_tensor_v2") {
      const auto& a = tuple(args, 4, qual);
      auto* s = std::get_if<StorageRef>(&a[0]->v);
      if (!s) fail("tensor without storage");
      return make(TensorRef{*s, integer(a[1]), ints(a[2]), ints(a[3])});
    }
    if (qual == "torch._utils._rebuild_parameter") return tuple(args, 1, qual)[0];
    fail("refusing to call " + qual + " (not part of a plain state_dict)");
  }
};

}  // namespace

std::vector<PickledTensor> parse_state_dict_pickle(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const Value* root = r.run();
  auto* d = std::get_if<Dict>(&root->v);
  if (!d) fail("top-level object is not a dict (is this a whole pickled model rather than a state_dict?)");
  std::vector<PickledTensor> out;
  std::set<std::string> seen;
  for (auto& [k, v] : *d) {
    auto* name = std::get_if<std::string>(&k->v);
    if (!name) fail("state_dict key is not a string");
    if (name->size() > kMaxNameLength) fail("state_dict key longer than " + std::to_string(kMaxNameLength));
    if (!seen.insert(*name).second) fail("key '" + *name + "' appears twice");
    auto* t = std::get_if<TensorRef>(&v->v);
    if (!t) fail("entry '" + *name + "' is not a tensor");
    out.push_back({*name, t->storage.key, t->storage.dtype, t->storage.numel, t->offset, t->size, t->stride});
  }
  return out;
}

namespace {
// True when the view's strides are the row-major ones for its size.
bool row_major(const PickledTensor& t) {
  int64_t expect = 1;
  for (size_t i = t.size.size(); i-- > 0;) {
    if (t.size[i] != 1 && t.stride[i] != expect) return false;
    expect *= t.size[i];
  }
  return true;
}
}  // namespace

TensorData materialize(const PickledTensor& t, const std::vector<uint8_t>& storage) {
  const std::string what = "checkpoint pickle: tensor " + t.name;
  if (t.size.size() != t.stride.size()) fail("tensor " + t.name + ": size/stride rank mismatch");
  if (t.offset < 0) fail("tensor " + t.name + ": negative storage offset");
  const int64_t numel = checked_numel(t.size, limits::kMaxTensorRank, limits::kMaxTensorElements, what);
  const int64_t es = int64_t(dtype_size(t.dtype));
  // Highest element index the view touches, every step checked.
  int64_t last = t.offset;
  for (size_t i = 0; i < t.size.size(); ++i) {
    if (t.stride[i] < 0) fail("tensor " + t.name + ": negative stride");
    if (t.size[i] > 0) last = checked_add(last, checked_mul(t.size[i] - 1, t.stride[i], what), what);
  }
  const int64_t storage_bytes = int64_t(storage.size());
  // A view must lie inside its storage and, as in any saved state dict, must
  // not hold more elements than the storage (no stride-0 blow-up).
  if (numel > 0 && checked_mul(checked_add(last, 1, what), es, what) > storage_bytes)
    fail("tensor " + t.name + " reaches past the end of storage " + t.storage_key + " (truncated file?)");
  if (checked_mul(numel, es, what) > storage_bytes)
    fail("tensor " + t.name + " has more elements than its storage " + t.storage_key);

  TensorData out;
  out.dtype = t.dtype;
  out.shape = t.size;
  out.bytes.resize(size_t(numel * es));
  if (row_major(t)) {  // what torch.save writes for every parameter: one copy
    if (numel > 0) std::memcpy(out.bytes.data(), storage.data() + t.offset * es, size_t(numel * es));
    return out;
  }
  const size_t rank = t.size.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t n = 0; n < numel; ++n) {
    int64_t src = t.offset;  // <= last: cannot overflow
    for (size_t i = 0; i < rank; ++i) src += idx[i] * t.stride[i];
    std::memcpy(out.bytes.data() + n * es, storage.data() + src * es, size_t(es));
    for (size_t i = rank; i-- > 0;) {
      if (++idx[i] < t.size[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

}  // namespace dfd
