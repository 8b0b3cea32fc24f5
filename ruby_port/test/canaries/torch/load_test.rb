# frozen_string_literal: true

require_relative "../canary"
require "stringio"

module Hymenoptera
  class LoadCanaryTest < CanaryTest
    canary "torch/load.rb", now_does: "read a checkpoint without copying the whole file into a Ruby String"

    # What Python's torch.save writes, made once per process by the venv's Python: name => path.
    PYTHON_FILES = <<~PYTHON
      import collections, os, sys, torch, torchvision
      sys.path.insert(0, os.environ["ROOT"])
      from reference_py.weights import save_state_dict
      out = sys.argv[1]
      def save(name, obj, **options):
          torch.save(obj, os.path.join(out, name + ".pth"), **options)
      torch.manual_seed(0)
      save_state_dict(os.path.join(out, "resnet18.pth"), torchvision.models.resnet18().state_dict())
      dtypes = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
                torch.float32, torch.float64, torch.complex64, torch.complex128, torch.bool]
      save("dtypes", {str(dtype).removeprefix("torch."): (torch.linspace(-2, 3, 7) * 1.3).to(dtype).reshape(7, 1).expand(7, 2).t()
                      for dtype in dtypes})
      base = torch.arange(24.).reshape(4, 6)
      save("views", {"base": base, "t": base.t(), "row": base[2], "col": base[:, 3], "block": base[1:3, 2:5],
                     "step": base[::2, ::3], "element": base[1, 2], "same": base, "empty_view": base[:, 2:2],
                     "expanded": torch.arange(3.).reshape(3, 1).expand(3, 4),
                     "expanded3": torch.arange(6.).reshape(1, 2, 3).expand(4, 2, 3),
                     "permuted": torch.arange(24).reshape(2, 3, 4).permute(2, 0, 1),
                     "alone": torch.ones(2, 3).t().contiguous()[1:]})
      save("kinds", {"ints": [0, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1], "floats": [2.5, -0.0, 1e300, float("inf")],
                     "strings": ["", "é", "ants"], "none": None, "yes": True, "no": False,
                     "nested": {"a": [torch.ones(2), {"b": 2, "c": [3, 4]}, []], 7: [None, False], 2.5: "x", True: {}},
                     "scalar": torch.tensor(5), "empty": torch.empty(0, 2),
                     "empty3": torch.zeros(2, 0, 3, dtype=torch.int16),
                     "grad": torch.ones(2, requires_grad=True), "grad_view": torch.ones(2, 3, requires_grad=True).t(),
                     "thousand": {f"k{i}": i for i in range(1000)}, "long": list(range(1002))})
      save("tensor", torch.arange(6.).reshape(2, 3)[:, 1:])
      small = torch.arange(6.).reshape(2, 3)
      save("small", {"w": small, "t": small.t(), "i": torch.tensor([1, 2], dtype=torch.int32), "s": ["a", 1.5]})
      # what LibTorch's unpickler (torch.rb's Torch.load) refuses, torch.rb reads or refuses alike
      save("state_dict", torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3)).state_dict())
      save("ordered", collections.OrderedDict())
      save("tuple", {"a": (1, 2), "b": torch.ones(1)})
      save("one", {"x": torch.ones(1)})
      save("long_int", {"a": 2**40, "b": 1})
      save("none_key", {None: 1, "a": torch.ones(1)})
      save("parameter", {"p": torch.nn.Parameter(torch.ones(2)), "q": 1})
      save("legacy", {"a": torch.ones(2), "b": 1}, _use_new_zipfile_serialization=False)
      class Run:
          def __reduce__(self):
              return (os.system, ("touch " + os.path.join(out, "ran"),))
      save("evil", {"a": torch.ones(2), "b": Run()})
      torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(out, "scripted.pt"))
    PYTHON

    def self.python_files
      @python_files ||= begin
        folder = Dir.mktmpdir("load-canary-python")
        Minitest.after_run { FileUtils.rm_rf(folder) }
        _, err, status = Open3.capture3({"ROOT" => PythonReference::ROOT, "OMP_NUM_THREADS" => "1"},
                                        PythonReference.interpreter, "-c", PYTHON_FILES, folder)
        raise "the Python files were not made: #{err}" unless status.success?

        Dir.glob("*.p*", base: folder).to_h { |name| [name[/\A[^.]+/], File.join(folder, name)] }
      end
    end

    def python(name)
      self.class.python_files.fetch(name)
    end

    # torch.rb's own Torch.load, which the fix takes over: its value, or the error it raised.
    def upstream(path)
      Torch.send(:to_ruby, Torch._load(File.binread(path)))
    rescue StandardError => e
      e
    end

    # The fix's reader alone: :unrecognised where it leaves the file to torch.rb.
    def ours(path)
      PytorchParity::Load.read(path) { :unrecognised }
    end

    # The fix reads the file itself and gives what torch.rb gives.
    def assert_read_as_upstream(path)
      mine = ours(path)
      refute :unrecognised.equal?(mine), "#{path}: the fix left it to torch.rb"
      theirs = upstream(path)
      refute_kind_of StandardError, theirs, "#{path}: torch.rb refused it"
      assert_same_values theirs, mine
      mine
    end

    # The fix leaves the file to torch.rb, whose Torch.load gives it (or refuses it) as before.
    def assert_left_to_upstream(path)
      assert :unrecognised.equal?(ours(path)), "#{path}: the fix read what it should leave to torch.rb"
      theirs = upstream(path)
      loaded = begin
        Torch.load(path)
      rescue StandardError => e
        e
      end
      if theirs.is_a?(StandardError)
        assert_equal [theirs.class, theirs.message], [loaded.class, loaded.message]
      else
        assert_same_values theirs, loaded
      end
      theirs
    end

    def test_a_python_state_dict_as_pretrained_py_writes_it
      loaded = assert_read_as_upstream(python("resnet18"))
      assert_equal 122, loaded.size
    end

    def test_every_dtype_of_the_storage_types
      loaded = assert_read_as_upstream(python("dtypes"))
      assert_equal PytorchParity::Save::STORAGE_TYPES.keys.map(&:to_s).sort, loaded.keys.sort
    end

    # Views keep their size, stride and offset, and share their storage's memory, as Python's torch.load
    # gives them (torch.rb's reads the storage once per tensor).
    def test_views_of_one_storage
      loaded = assert_read_as_upstream(python("views"))
      base = loaded["base"]
      assert_equal [1, 6], loaded["t"].stride
      assert_equal [base._data_ptr] * 2, [loaded["t"]._data_ptr, loaded["same"]._data_ptr]
      assert_equal base._data_ptr + (((1 * 6) + 2) * 4), loaded["block"]._data_ptr
      assert_equal [1, 0], loaded["expanded"].stride
    end

    def test_nested_values_scalars_empty_tensors_and_requires_grad
      loaded = assert_read_as_upstream(python("kinds"))
      assert_equal [true, true, false], [loaded["grad"].requires_grad, loaded["grad_view"].requires_grad, loaded["empty"].requires_grad]
      assert_equal [[], [0, 2], [2, 0, 3]], [loaded["scalar"].shape, loaded["empty"].shape, loaded["empty3"].shape]
      assert_equal ["a", 7, 2.5, true], loaded["nested"].keys
      assert_read_as_upstream(python("tensor"))
    end

    # What torch.rb's Torch.load refuses (a state dict's OrderedDict, a tuple, a dict of one item, an integer in
    # a LONG1 of other than 8 bytes, a None key, a Parameter, the legacy format) or reads otherwise (a
    # TorchScript archive) is its own.
    def test_what_libtorchs_unpickler_refuses_is_left_to_torch_rb
      %w[state_dict tuple one long_int none_key parameter legacy scripted].each do |name|
        assert_kind_of StandardError, assert_left_to_upstream(python(name)), name
      end
    end

    # LibTorch makes collections.OrderedDict() None (it expects one only as a tensor's hooks).
    def test_an_empty_ordered_dict_is_nil
      assert_nil assert_read_as_upstream(python("ordered"))
    end

    # A pickle that would call os.system is never run: torch.rb's unpickler refuses it, as before.
    def test_a_global_torch_save_does_not_write_is_never_run
      refused = assert_left_to_upstream(python("evil"))
      assert_match(/unknown type posix\.system/, refused.message)
      refute File.exist?(File.join(File.dirname(python("evil")), "ran"))
    end

    # What pytorch_parity's Torch.save writes (dicts and lists of one item as batches, integers in 8 bytes).
    def test_files_of_the_torch_save_fix
      base = Torch.arange(12, dtype: :float64).reshape(3, 4)
      saved = {"dtypes" => PytorchParity::Save::STORAGE_TYPES.keys.to_h { |dtype| [dtype.to_s, (Torch.arange(6) % 3).to(dtype)] },
               "base" => base, "t" => base.t, "row" => base[1], "empty" => Torch.empty(0, 2), "scalar" => Torch.tensor(5, dtype: :int32),
               "one" => {"x" => [1 << 40]}, "grad" => Torch.ones(2, requires_grad: true), 3 => [-7, 2.5, +"é", nil, true, false]}
      path = File.join(tmpdir, "saved.pth")
      Torch.save(saved, path)
      loaded = assert_read_as_upstream(path)
      assert_same_values saved, loaded
      assert_equal loaded["base"]._data_ptr, loaded["t"]._data_ptr
    end

    # Torch.load is the fix's reader: the views it gives share their storage's memory, which torch.rb's do not.
    def test_torch_load_reads_through_the_fix
      loaded = Torch.load(python("views"))
      assert_equal loaded["base"]._data_ptr, loaded["t"]._data_ptr
      refute_equal(*upstream(python("views")).values_at("base", "t").map(&:_data_ptr))
    end

    # A truncated file is left to torch.rb, which refuses it in its words.
    def test_a_truncated_file
      bytes = File.binread(python("small"))
      [bytes.bytesize / 2, bytes.bytesize - 1, bytes.bytesize - 22, 10, 0].each do |size|
        path = File.join(tmpdir, "cut#{size}.pth")
        File.binwrite(path, bytes.byteslice(0, size))
        assert_kind_of StandardError, assert_left_to_upstream(path), "cut to #{size} bytes"
      end
    end

    # Every byte of a small archive changed in turn: the fix gives what torch.rb gives (its value, or
    # torch.rb refuses it), or, for a tensor past its storage's memory, which torch.rb would show, refuses it.
    def test_every_byte_changed_in_turn
      bytes = File.binread(python("small"))
      path = File.join(tmpdir, "changed.pth")
      outcomes = Hash.new(0)
      bytes.bytesize.times do |at|
        changed = bytes.dup
        changed.setbyte(at, changed.getbyte(at) ^ 0x11)
        File.binwrite(path, changed)
        mine = begin
          ours(path)
        rescue RuntimeError => e
          assert_match(/\(a damaged file\)\z/, e.message, "byte #{at}")
          outcomes[:refused] += 1
          next
        end
        if :unrecognised.equal?(mine)
          outcomes[:left] += 1
          next
        end
        theirs = upstream(path)
        refute_kind_of StandardError, theirs, "byte #{at}: the fix read a file torch.rb refuses (#{theirs.inspect[0, 200]})"
        assert_same_values theirs, mine, "byte #{at}"
        outcomes[:read] += 1
      end
      assert_operator outcomes[:read], :>, 100
      assert_operator outcomes[:left], :>, 100
    end

    # A byte of data.pkl changed: in a global's name, torch.rb refuses it; in a key, both give the new key.
    def test_a_byte_changed_in_data_pkl
      bytes = File.binread(python("small"))
      global = bytes.index("_rebuild_tensor_v2")
      key = bytes.index("X\x01\x00\x00\x00w".b) + 5
      [[global, "x"], [key, "v"]].each do |at, byte|
        changed = bytes.dup
        changed.setbyte(at, byte.ord)
        path = File.join(tmpdir, "changed#{at}.pth")
        File.binwrite(path, changed)
        if at == global
          assert_match(/unknown type torch\._utils\.x/, assert_left_to_upstream(path).message)
        else
          assert_equal %w[v t i s], assert_read_as_upstream(path).keys
        end
      end
    end

    # An IO, a folder or a missing file: torch.rb's Torch.load refuses them in its words.
    def test_what_is_not_a_file_is_left_to_torch_rb
      error = assert_raises(TypeError) { Torch.load(StringIO.new(File.binread(python("small")))) }
      assert_match(/no implicit conversion/, error.message)
      assert_raises(Errno::EISDIR) { Torch.load(tmpdir) }
      assert_raises(Errno::ENOENT) { Torch.load(File.join(tmpdir, "nowhere.pth")) }
    end

    private

    def assert_same_values(expected, actual, where = "")
      assert_equal expected.class, actual.class, where
      case expected
      when Torch::Tensor
        assert_equal [expected.dtype, expected.shape, expected.stride, expected.requires_grad],
                     [actual.dtype, actual.shape, actual.stride, actual.requires_grad], where
        assert Torch.equal(expected.detach, actual.detach), "#{where}: other values"
      when Hash
        assert_equal expected.keys, actual.keys, where
        expected.each { |key, value| assert_same_values(value, actual[key], "#{where}[#{key.inspect}]") }
      when Array
        assert_equal expected.size, actual.size, where
        expected.zip(actual).each_with_index { |(value, other), i| assert_same_values(value, other, "#{where}[#{i}]") }
      when String
        assert_equal [expected, expected.encoding, expected.frozen?], [actual, actual.encoding, actual.frozen?], where
      when Float
        assert_equal [expected].pack("G"), [actual].pack("G"), where
      when nil then assert_nil actual, where
      else assert_equal expected, actual, where
      end
    end
  end
end
