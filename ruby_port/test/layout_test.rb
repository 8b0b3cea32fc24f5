# frozen_string_literal: true

require_relative "test_helper"
require_relative "canaries/fix"

# The README's layout: each file of lib/hymenoptera/ is a twin of reference_py/ (the same name) or one of
# the port's tools; lib/pytorch_parity/ holds the fixes of upstream gems under torch/ and torchvision/
# (each with its header and canary: canaries/room_test.rb) and the library's own image stack under image/.
class LayoutTest < Minitest::Test
  LIB = File.join(Hymenoptera::PythonReference::ROOT, "ruby_port/lib/hymenoptera")
  REFERENCE = File.join(Hymenoptera::PythonReference::ROOT, "reference_py")
  TOOLS = %w[cli logits python_reference].freeze # the README's "Tools"
  Fix = Hymenoptera::Fix
  # What marks a file as changing an upstream class: a prepend, or a class of the gems reopened.
  CHANGES_UPSTREAM = /\.prepend\(|^\s*(?:class|module) (?:Torch|TorchVision)\b/

  def test_every_file_is_a_twin_or_a_tool
    names = Dir.children(LIB).select { |name| name.end_with?(".rb") }.map { |name| name.delete_suffix(".rb") }
    strays = names.reject { |name| TOOLS.include?(name) || File.file?(File.join(REFERENCE, "#{name}.py")) }
    assert_empty strays, "lib/hymenoptera/ holds neither twins of reference_py/ nor the README's tools: #{strays.join(', ')}"
    twins_of_nothing = TOOLS.select { |name| File.file?(File.join(REFERENCE, "#{name}.py")) }
    assert_empty twins_of_nothing, "listed as tools, but reference_py/ has them: #{twins_of_nothing.join(', ')}"
    assert_empty TOOLS - names, "tools listed that lib/hymenoptera/ no longer holds"
  end

  # A file of lib/pytorch_parity/ is a fix when it lies under torch/ or torchvision/, at the path of what it
  # changes; the image stack (image/: decoding, PIL's conversions, resampling) fixes nothing, so it has no
  # fix's header, no canary, and changes no upstream class; the rest is the library's set-up and recorder.
  def test_fixes_are_under_the_gems_paths_and_the_image_stack_is_no_fix
    files = Dir.glob("**/*.rb", base: Fix::ROOM).sort
    under_gems = files.select { |name| name.start_with?(*Fix::GEMS.keys.map { |gem| "#{gem}/" }) }
    fixes = Fix.all.map(&:name)
    assert_empty fixes - under_gems, "lib/pytorch_parity/: neither a fix (under torch/ or torchvision/) nor listed in Fix::NOT_FIXES (image/, set-up, ...)"
    assert_empty under_gems - fixes, "lib/pytorch_parity/: under the gems' paths, yet not taken for fixes (Fix::NOT_FIXES)"
    image = files.select { |name| name.start_with?("image/") }
    refute_empty image
    image.each do |name|
      text = File.read(File.join(Fix::ROOM, name))
      header = text.lines.drop(1).take_while { |line| line.start_with?("#") || line.strip.empty? }
      fields = header.grep(Fix::FIELD).map { |line| line[/\A# ([^:]+):/, 1] }
      assert_empty fields, "lib/pytorch_parity/#{name} is the image stack, no fix: its header has #{fields.join(', ')}"
      assert header.any? { |line| line.start_with?("# ") }, "lib/pytorch_parity/#{name}: no header saying what it does"
      refute CHANGES_UPSTREAM.match?(text),
             "lib/pytorch_parity/#{name} changes an upstream class: a fix, at the path of what it changes"
      canary = File.join(Fix::PORT, "test/canaries", name.sub(/\.rb\z/, "_test.rb"))
      refute File.exist?(canary), "#{canary}: the image stack has no canary"
    end
  end
end
