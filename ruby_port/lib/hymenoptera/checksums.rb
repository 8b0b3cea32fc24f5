# frozen_string_literal: true

require "openssl"

module Hymenoptera
  # Checksums: the sha256 of a file, as the manifests and the weights' records keep it (mirrors
  # reference_py/checksums.py). OpenSSL's digest, not Ruby's Digest::SHA256: on net.pth (44 MB) 0.2 s
  # against a few hundredths, at every run of the trainer.
  module Checksums
    CHUNK = 1 << 20

    module_function

    # The file's sha256, hex, read in 1 MiB chunks.
    def file_sha256(path)
      digest = OpenSSL::Digest.new("SHA256")
      File.open(path, "rb") do |stream|
        buffer = +""
        digest.update(buffer) while stream.read(CHUNK, buffer)
      end
      digest.hexdigest
    end
  end
end
