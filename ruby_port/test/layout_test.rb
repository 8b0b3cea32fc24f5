# frozen_string_literal: true

require_relative "test_helper"

# The README's layout: each file of lib/hymenoptera/ is a twin of reference_py/ (the same name) or one of
# the port's tools; the fixes of upstream gems are in lib/pytorch_parity/ (canaries/room_test.rb).
class LayoutTest < Minitest::Test
  LIB = File.join(Hymenoptera::PythonReference::ROOT, "ruby_port/lib/hymenoptera")
  REFERENCE = File.join(Hymenoptera::PythonReference::ROOT, "reference_py")
  TOOLS = %w[cli logits python_reference].freeze # the README's "Tools"

  def test_every_file_is_a_twin_or_a_tool
    names = Dir.children(LIB).select { |name| name.end_with?(".rb") }.map { |name| name.delete_suffix(".rb") }
    strays = names.reject { |name| TOOLS.include?(name) || File.file?(File.join(REFERENCE, "#{name}.py")) }
    assert_empty strays, "lib/hymenoptera/ holds neither twins of reference_py/ nor the README's tools: #{strays.join(', ')}"
    twins_of_nothing = TOOLS.select { |name| File.file?(File.join(REFERENCE, "#{name}.py")) }
    assert_empty twins_of_nothing, "listed as tools, but reference_py/ has them: #{twins_of_nothing.join(', ')}"
    assert_empty TOOLS - names, "tools listed that lib/hymenoptera/ no longer holds"
  end
end
