// Tells Ruby's GC how much memory LibTorch's CPU tensors hold, so that it runs when they pile up (as
// it runs when Ruby's own objects do) and frees the tensors nobody holds any more. Installed as
// LibTorch's CPU allocator in place of the default one: every byte it hands out is added to Ruby's
// malloc count (rb_gc_adjust_memory_usage), every byte given back is taken off.
//
// rb_gc_adjust_memory_usage may only be called holding the GVL; LibTorch also allocates and frees on
// its own threads (OpenMP workers, which never hold it). Those bytes wait in an atomic counter and
// are settled with the next allocation or free on a thread that holds the GVL.
//
// Ruby starts a GC for its malloc count only inside its own malloc (rb_gc_adjust_memory_usage only
// counts), and a loop of tensor operations may not call it for a long while; nor may a GC run inside
// this allocator, in the middle of a LibTorch operation that may hold locks the tensors it frees need.
// So a postponed job (run at the Ruby thread's next safe point) starts the GC, swept at once: a minor
// one when the bytes counted since the last GC pass GC_BYTES, or GARBAGE_GC_BYTES once the last GC the
// count started freed at least three quarters of what had been counted before it. What a forward pass keeps
// for backward survives its GCs, which stay 16 MiB apart there, where a training step's memory peaks; a step
// that keeps nothing (evaluation, a frozen backbone's forward pass) leaves garbage only, and fewer GCs free it
// all the same: 2 a step instead of 6, 2.1 ms of wall time instead of 3.4. (Before the Marshal copies took
// mappings of their own, 48 MiB whenever autograd recorded nothing, or 32 MiB in every mode, raised the run's
// peak: to 760 MiB over 25 epochs for 32. A GC held back until the bytes live neared the most they had been,
// tried since, raised it to 740 and let the RSS grow over the epochs: bench/README.md.)
//
// A major one only when minor GCs have stopped freeing what is dropped. torch.rb's tensor objects have
// no write barrier, so Ruby never promotes them by age, but one that an old object holds at a minor GC
// (a batch's Array, promoted by the DataLoader's own old structures) stays until a major GC, which marks
// Ruby's whole heap, its 70,000 objects, nearly all loaded code, for 10-25 ms. The bytes alive after a
// GC (its survivors) say how much such garbage waits: their lowest over WINDOW_GCS GCs, so that what a
// forward pass holds for backward does not count, is compared with their lowest since the last major
// GC, and once it has grown by PINNED_GC_BYTES the next GC is a major one. Counting bytes allocated
// instead (Ruby's oldmalloc rule: 32 MiB since the last major GC, 256 MiB while autograd records) started
// a major GC at nearly every evaluation step, which freed nothing. Ruby's own limits alone (16 MiB
// growing to 32 MiB) and its lazy sweep left 1.2x Python's peak memory in training: bench/README.md has
// the figures of each design tried.
//
// glibc gives the free top of its heap back to the system once it passes twice the largest mapping freed
// so far (a threshold that glibc raises by itself, to about 26 MB for the tutorial's ResNet-18), and the
// next step, which allocates as much again, writes into fresh pages: 12,500 page faults (49 MiB) every
// fine-tuning step, in Python as in Ruby. Installing the allocator keeps TOP_PAD_BYTES at the top of the
// heap instead (glibc's M_TOP_PAD), with blocks below MMAP_THRESHOLD_BYTES from the heap (setting one
// stops glibc raising the other; 16 MiB is about where it would have raised it); a process whose
// environment sets any of glibc's MALLOC_*_ tunables keeps its own. What the heap holds free (the kept top,
// and the holes that frees in a GC's order leave between live blocks) stays resident for the next steps to
// allocate into, as in Python's heap. Giving the holes back at each major GC (malloc_trim) made the steps
// after it fault them in again: 1,700 page faults a feature-extraction step, more than its GCs cost
// (bench/README.md). trim_heap gives everything back where no step follows.
//
// Memory LibTorch does not allocate here (a DataLoader batch mapped from a worker's file) is counted
// through adjust(), by whoever made it.
#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <ctime>

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <ruby.h>
#include <ruby/debug.h>
#include <ruby/vm.h>

extern "C" int ruby_thread_has_gvl_p(void);

#ifndef SOURCE_SHA256
#error "compile with -DSOURCE_SHA256=\"<sha256 of this file>\" (bin/setup does)"
#endif

namespace {

std::atomic<int64_t> unsettled{0};
std::atomic<int64_t> live{0};
constexpr size_t GC_BYTES = 16 << 20;
constexpr size_t GARBAGE_GC_BYTES = 48 << 20;
constexpr int64_t PINNED_GC_BYTES = 16 << 20;
constexpr int WINDOW_GCS = 16;
constexpr int TOP_PAD_BYTES = 64 << 20;
constexpr int MMAP_THRESHOLD_BYTES = 16 << 20;
bool vm_alive = true;  // LibTorch may free tensors after Ruby's VM is gone (its own statics, at exit)
bool collection_pending = false;
bool full_collection = false;
VALUE malloc_increase_bytes, major_gc_count, minor_gc_options, major_gc_options;
ID start;

// The survivors of GCs, Ruby's own included: seen at the first count after each one.
size_t gcs_seen = 0, majors_seen = 0;
// What was live and counted since the GC before, when this count last started one (live -1 once seen), and
// whether that GC found mostly garbage.
int64_t live_before_collection = -1, counted_before_collection = 0;
bool mostly_garbage = false;
int64_t lowest_since_major = -1;
int64_t lowest_in_window = INT64_MAX;
int gcs_in_window = 0;

// The GCs this count started, and their wall time, for benchmarks: GC.stat(:time) and GC::Profiler read
// process CPU time, which adds what LibTorch's OpenMP threads spin meanwhile, and adds it at their scheduler
// ticks (a 0.5 ms GC after a training step may read 4 ms; over 60 such GCs, 76 ms for 32 ms of wall time).
size_t collections = 0;
int64_t collection_ns = 0;

int64_t monotonic_ns() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
}

void collect(void*) {
  collection_pending = false;
  // GC.start runs even under GC.disable, which this must respect: rb_gc_disable says whether it was.
  if (rb_gc_disable() == Qtrue) return;
  rb_gc_enable();
  VALUE options = full_collection ? major_gc_options : minor_gc_options;
  full_collection = false;
  int64_t started = monotonic_ns();
  live_before_collection = live.load(std::memory_order_relaxed);
  counted_before_collection = static_cast<int64_t>(rb_gc_stat(malloc_increase_bytes));
  rb_funcallv_kw(rb_mGC, start, 1, &options, RB_PASS_KEYWORDS);
  collection_ns += monotonic_ns() - started;
  ++collections;
}

VALUE gc_options(bool full_mark) {
  VALUE options = rb_hash_new();
  rb_hash_aset(options, ID2SYM(rb_intern("full_mark")), full_mark ? Qtrue : Qfalse);
  rb_hash_aset(options, ID2SYM(rb_intern("immediate_sweep")), Qtrue);
  rb_obj_freeze(options);
  rb_gc_register_mark_object(options);
  return options;
}

// Called holding the GVL, outside GC: notes the survivors of the GCs since the last call and decides
// whether the next one waits for GARBAGE_GC_BYTES, and whether it is major.
void observe_gcs() {
  size_t gcs = rb_gc_count();
  if (gcs == gcs_seen || rb_during_gc()) return;
  gcs_seen = gcs;
  int64_t survivors = live.load(std::memory_order_relaxed);
  if (live_before_collection >= 0) {
    mostly_garbage = (live_before_collection - survivors) * 4 >= counted_before_collection * 3;
    live_before_collection = -1;
  } else {
    // A GC Ruby started itself sweeps lazily, as Ruby allocates objects: the tensors it found dropped may
    // stay allocated for a while (a loop of tensor operations allocates few objects). The next GC comes
    // GC_BYTES later, not GARBAGE_GC_BYTES on top of what waits for that sweep.
    mostly_garbage = false;
  }
  size_t majors = rb_gc_stat(major_gc_count);
  if (majors != majors_seen || lowest_since_major < 0) {
    majors_seen = majors;
    lowest_since_major = survivors;
    lowest_in_window = INT64_MAX;
    gcs_in_window = 0;
    return;
  }
  lowest_in_window = std::min(lowest_in_window, survivors);
  if (++gcs_in_window < WINDOW_GCS) return;
  lowest_since_major = std::min(lowest_since_major, lowest_in_window);
  if (lowest_in_window - lowest_since_major > PINNED_GC_BYTES) full_collection = true;
  lowest_in_window = INT64_MAX;
  gcs_in_window = 0;
}

void count(int64_t bytes) {
  live.fetch_add(bytes, std::memory_order_relaxed);
  if (!vm_alive || !ruby_thread_has_gvl_p()) {
    unsettled.fetch_add(bytes, std::memory_order_relaxed);
    return;
  }
  bytes += unsettled.exchange(0, std::memory_order_relaxed);
  if (bytes == 0) return;
  rb_gc_adjust_memory_usage(bytes);
  observe_gcs();
  if (bytes < 0 || collection_pending) return;
  if (full_collection || rb_gc_stat(malloc_increase_bytes) > (mostly_garbage ? GARBAGE_GC_BYTES : GC_BYTES)) {
    collection_pending = true;
    rb_postponed_job_register_one(0, collect, nullptr);
  }
}

// Blocks come from malloc, not from posix_memalign as c10's default allocator takes them: glibc 2.36's
// posix_memalign asks its bins for ALIGNMENT + 32 bytes more than the block it keeps, so a hole exactly one
// tensor's size, which a GC's frees leave between live tensors, never takes the same tensor again, and the
// heap grew epoch after epoch until freed neighbours had merged. A malloc'ed block is a little larger, the
// data aligned inside it and, just before the data, a mark and the block's start, so that the context stays
// the data pointer, as the default allocator's (raw_allocate needs that). Memory the default allocator gave
// before this one was installed (a oneDNN cache made through raw_allocate) has no mark: it goes back as c10
// would give it back.
constexpr size_t ALIGNMENT = 64;  // c10's gAlignment
constexpr uintptr_t MARK = 0x7079746f72636821;  // "pytorch!"
constexpr uintptr_t MAPPED_MARK = 0x7079746f7263683f;  // "pytorch?": a block mapped on its own
constexpr size_t HEADER = 2 * sizeof(void*);

// Tensors that will outlive the steps around them (a deep copy of the weights, kept for epochs) take their
// own mappings, past MAPPED_MIN_BYTES, while a Ruby block runs on this thread (in_own_mappings): in the
// heap they would sit in the holes a step's frees left, and the next steps' tensors, which no longer fit
// there, would grow the heap around them. The tutorial's best-weights copy did so at each better epoch: the
// heap's resident part grew from 410 to 492 MiB over epochs 1-6; without the copy it stayed at 388. A
// mapped block's first word is its length; the data starts ALIGNMENT bytes in.
constexpr size_t MAPPED_MIN_BYTES = 64 << 10;
thread_local bool own_mappings = false;

void counted_delete(void* data) {
  if (data == nullptr) return;
  uintptr_t* header = static_cast<uintptr_t*>(data) - 2;
  if (header[0] == MAPPED_MARK) {
    header[0] = 0;
    void* block = reinterpret_cast<void*>(header[1]);
    size_t length = *static_cast<size_t*>(block);
    munmap(block, length);
    count(-static_cast<int64_t>(length));
    return;
  }
  if (header[0] != MARK) {
    std::free(data);
    return;
  }
  header[0] = 0;
  void* block = reinterpret_cast<void*>(header[1]);
  int64_t bytes = static_cast<int64_t>(malloc_usable_size(block));
  std::free(block);
  count(-bytes);
}

// The tensor memory at data, in block: mark and block's start written just before it, counted_delete its deleter.
c10::DataPtr marked(void* block, void* data, uintptr_t mark) {
  uintptr_t* header = static_cast<uintptr_t*>(data) - 2;
  header[0] = mark;
  header[1] = reinterpret_cast<uintptr_t>(block);
  return {data, data, &counted_delete, c10::Device(c10::DeviceType::CPU)};
}

struct CountingAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t nbytes) const override {
    if (nbytes == 0) return {nullptr, nullptr, &counted_delete, c10::Device(c10::DeviceType::CPU)};
    if (own_mappings && nbytes >= MAPPED_MIN_BYTES) return allocate_mapped(nbytes);
    void* block = std::malloc(nbytes + ALIGNMENT + HEADER);
    TORCH_CHECK(block != nullptr, "DefaultCPUAllocator: not enough memory: you tried to allocate ", nbytes, " bytes.");
    uintptr_t start = reinterpret_cast<uintptr_t>(block) + HEADER;
    count(static_cast<int64_t>(malloc_usable_size(block)));
    return marked(block, reinterpret_cast<void*>((start + ALIGNMENT - 1) & ~(ALIGNMENT - 1)), MARK);
  }

  static c10::DataPtr allocate_mapped(size_t nbytes) {
    size_t length = nbytes + ALIGNMENT;
    void* block = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TORCH_CHECK(block != MAP_FAILED, "DefaultCPUAllocator: not enough memory: you tried to allocate ", nbytes, " bytes.");
    *static_cast<size_t*>(block) = length;
    count(static_cast<int64_t>(length));
    return marked(block, static_cast<char*>(block) + ALIGNMENT, MAPPED_MARK);
  }

  c10::DeleterFnPtr raw_deleter() const override { return &counted_delete; }
};

CountingAllocator counting;

void keep_heap_top() {
  for (const char* tunable : {"MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_"}) {
    if (std::getenv(tunable) != nullptr) return;
  }
  mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
  mallopt(M_TOP_PAD, TOP_PAD_BYTES);
}

void vm_destroyed(ruby_vm_t*) {
  vm_alive = false;
}

// The allocator this one replaces must be c10's default one, whose memory (its own pointer as context,
// freed by its raw deleter) counted_delete gives back with free() when it comes without a mark.
VALUE install(VALUE) {
  c10::Allocator* current = c10::GetCPUAllocator();
  if (current == &counting) return Qfalse;
  c10::DataPtr probe = current->allocate(64);
  if (probe.get() == nullptr || probe.get_context() != probe.get() || probe.get_deleter() != current->raw_deleter() ||
      current->raw_deleter() == nullptr) {
    rb_raise(rb_eRuntimeError,
             "pytorch_parity: LibTorch's CPU allocator is not c10's default one; Ruby's GC cannot be told of tensor memory");
  }
  ruby_vm_at_exit(vm_destroyed);
  keep_heap_top();
  c10::SetCPUAllocator(&counting, UINT8_MAX);
  return Qtrue;
}

// bytes (negative when freed) of memory LibTorch did not allocate through this allocator.
VALUE adjust(VALUE, VALUE bytes) {
  count(NUM2LL(bytes));
  return Qnil;
}

// The heap's free memory, the kept top included, back to the system: for when no step follows.
VALUE trim_heap(VALUE) {
  return malloc_trim(0) ? Qtrue : Qfalse;
}

VALUE yield_nothing(VALUE) {
  return rb_yield(Qnil);
}

VALUE restore_own_mappings(VALUE was) {
  own_mappings = RTEST(was);
  return Qnil;
}

// Runs the block with the tensors this thread makes in it in their own mappings (see MAPPED_MIN_BYTES).
VALUE in_own_mappings(VALUE) {
  rb_need_block();
  VALUE was = own_mappings ? Qtrue : Qfalse;
  own_mappings = true;
  return rb_ensure(yield_nothing, Qnil, restore_own_mappings, was);
}

VALUE counted_bytes(VALUE) {
  return LL2NUM(live.load(std::memory_order_relaxed));
}

// [GCs started by this count so far, their wall time in seconds]
VALUE collections_started(VALUE) {
  return rb_ary_new_from_args(2, SIZET2NUM(collections), DBL2NUM(collection_ns / 1e9));
}

}  // namespace

extern "C" void Init_tensor_memory_accounting() {
  malloc_increase_bytes = ID2SYM(rb_intern("malloc_increase_bytes"));
  major_gc_count = ID2SYM(rb_intern("major_gc_count"));
  start = rb_intern("start");
  minor_gc_options = gc_options(false);
  major_gc_options = gc_options(true);
  VALUE parity = rb_define_module("PytorchParity");
  VALUE accounting = rb_define_module_under(parity, "TensorMemoryAccounting");
  rb_define_const(accounting, "SOURCE_SHA256", rb_str_freeze(rb_str_new_cstr(SOURCE_SHA256)));
  rb_define_module_function(accounting, "install", RUBY_METHOD_FUNC(install), 0);
  rb_define_module_function(accounting, "adjust", RUBY_METHOD_FUNC(adjust), 1);
  rb_define_module_function(accounting, "counted_bytes", RUBY_METHOD_FUNC(counted_bytes), 0);
  rb_define_module_function(accounting, "collections_started", RUBY_METHOD_FUNC(collections_started), 0);
  rb_define_module_function(accounting, "in_own_mappings", RUBY_METHOD_FUNC(in_own_mappings), 0);
  rb_define_module_function(accounting, "trim_heap", RUBY_METHOD_FUNC(trim_heap), 0);
}
