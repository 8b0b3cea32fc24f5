# frozen_string_literal: true

# Forces the collision bin/patch-rice-method-registry fixes, instead of waiting for it: two methods
# whose rice 4.0 keys `(53 + klass) * 53 + id` are equal, in a tiny extension compiled twice, against
# rice's header as released (from the gem's .gem file) and against the installed one (patched by
# bin/setup). Takes a few seconds; no torch involved.
#
#   ruby bench/rice_registry_collision.rb
#   HYMENOPTERA_PARITY_CACHE=/tmp/other-cache ruby bench/rice_registry_collision.rb   # another bundle
#
# Exit status 0 when the released header aborts with std::bad_any_cast and the installed one answers
# both methods; 1 otherwise.

require "fileutils"
require "json"
require "open3"
require "rbconfig"
require "tmpdir"

EXTENSION = <<~CPP
  #include <rice/rice.hpp>
  using namespace Rice;

  // Two ways to define a method on any class; their functions differ in type, so reading one's data
  // as the other's fails with std::bad_any_cast.
  extern "C" void Init_collide()
  {
    Module m = define_module("Collide");
    m.define_singleton_function("define_int", [](Class c, Symbol name) {
      c.define_method(Identifier(name), [](Object) { return 1; });
    });
    m.define_singleton_function("define_float", [](Class c, Symbol name) {
      c.define_method(Identifier(name), [](Object) { return 2.5; });
    });
  }
CPP

# Runs in a process of its own: picks classes A and B (A above B by a multiple of 16 bytes), names a
# method for A, then interns new names until one has the id that makes B's key equal to A's.
FORCE = <<~'RUBY'
  $stdout.sync = true
  require "fiddle"
  require ARGV[0]
  sym2id = Fiddle::Function.new(Fiddle::Handle::DEFAULT["rb_sym2id"], [Fiddle::TYPE_UINTPTR_T], Fiddle::TYPE_UINTPTR_T)
  id_of = ->(sym) { sym2id.call(Fiddle.dlwrap(sym)) }
  key = ->(klass, id) { ((53 + klass) * 53 + id) & 0xFFFF_FFFF_FFFF_FFFF }

  classes = Array.new(200) { Class.new }
  address = classes.to_h { |c| [c, Fiddle.dlwrap(c)] }
  first_name = :"collision_first_#{1}" # made at run time, like the names below: same kind of id
  first_id = id_of.(first_name)
  next_id = id_of.(:"collision_probe_#{1}")
  a, b = classes.combination(2).map { |x, y| address[x] > address[y] ? [x, y] : [y, x] }
                .select { |x, y| (d = address[x] - address[y]) % 16 == 0 && first_id + 53 * d > next_id }
                .min_by { |x, y| address[x] - address[y] }
  target = first_id + 53 * (address[a] - address[b])
  second_name = (0..1_000_000).lazy.map { |k| :"collision_name_#{k}" }.find { |sym| id_of.(sym) >= target }
  abort "collide: no name got id #{target}" unless id_of.(second_name) == target
  abort "collide: the keys differ" unless key.(address[a], first_id) == key.(address[b], target)

  Collide.define_int(a, first_name)
  Collide.define_float(b, second_name)
  puts JSON.generate([a.new.public_send(first_name), b.new.public_send(second_name)])
RUBY

# The rice gem of the bundle this checkout uses (or HYMENOPTERA_PARITY_CACHE/bundle).
def rice_spec(work)
  cache = ENV["HYMENOPTERA_PARITY_CACHE"]
  if cache && !cache.empty?
    FileUtils.mkdir_p(File.join(work, "bundle-config"))
    File.write(File.join(work, "bundle-config", "config"), "---\nBUNDLE_PATH: #{JSON.generate(File.join(cache, "bundle"))}\n")
    ENV["BUNDLE_APP_CONFIG"] = File.join(work, "bundle-config")
  end
  ENV["BUNDLE_GEMFILE"] = File.expand_path("../Gemfile", __dir__)
  require "bundler/setup"
  Gem.loaded_specs.fetch("rice")
end

def released_include(spec, work)
  require "rubygems/package"
  target = File.join(work, "released")
  Gem::Package.new(spec.cache_file).extract_files(target)
  File.join(target, "include")
end

# collide.so compiled against include_dir, in its own directory.
def compile(include_dir, out_dir)
  FileUtils.mkdir_p(out_dir)
  source = File.join(out_dir, "collide.cpp")
  File.write(source, EXTENSION)
  ruby_includes = %w[rubyhdrdir rubyarchhdrdir].map { |key| "-I#{RbConfig::CONFIG[key]}" }
  command = ["g++", "-std=c++17", "-O1", "-fPIC", "-shared", "-I#{include_dir}", *ruby_includes, source,
             "-o", File.join(out_dir, "collide.so")]
  output, status = Open3.capture2e(*command)
  abort "rice_registry_collision: compiling against #{include_dir} failed:\n#{output}" unless status.success?
  File.join(out_dir, "collide.so")
end

# [passed?, what happened] for collide.so, in a fresh process.
def force(extension, work)
  script = File.join(work, "force.rb")
  File.write(script, "require \"json\"\n#{FORCE}")
  stdout, stderr, status = Open3.capture3(RbConfig.ruby, script, extension)
  if status.success?
    [true, "both methods answered: #{stdout.strip}"]
  elsif stderr.include?("std::bad_any_cast")
    [false, "aborted with std::bad_any_cast (#{status.signaled? ? "signal #{status.termsig}" : "exit #{status.exitstatus}"})"]
  else
    [false, "failed (#{status.inspect}): #{stderr.lines.last(3).join.strip}"]
  end
end

Dir.mktmpdir("rice-registry-collision-") do |work|
  spec = rice_spec(work)
  installed = File.join(spec.full_gem_path, "include")
  released_passed, released = force(compile(released_include(spec, work), File.join(work, "build-released")), work)
  installed_passed, installed_result = force(compile(installed, File.join(work, "build-installed")), work)
  puts "rice #{spec.version}, two methods with equal rice 4.0 keys:"
  puts "  header as released (#{spec.cache_file}): #{released}"
  puts "  installed header (#{installed}): #{installed_result}"
  reproduced = !released_passed && released.include?("bad_any_cast")
  puts reproduced && installed_passed ? "  the installed header fixes the collision" : "  NOT as expected"
  exit(reproduced && installed_passed ? 0 : 1)
end
