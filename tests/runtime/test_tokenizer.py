from runtime.tokenizer import EOS, FIM_PREFIX, FIM_SUFFIX, MASK, PAD, Tokenizer


def test_special_ids_come_from_the_tokenizer():
    tok = Tokenizer.byte_level()
    assert tok.pad_id == tok.hf.token_to_id(PAD)
    assert tok.mask_id == tok.hf.token_to_id(MASK)
    assert tok.hf.token_to_id(EOS) in tok.special_ids
    assert tok.fim_prefix_id == tok.hf.token_to_id(FIM_PREFIX)
    assert tok.fim_suffix_id == tok.hf.token_to_id(FIM_SUFFIX)
    assert len(tok.special_ids) == 5
    assert tok.vocab_size == 261


def test_roundtrip_unicode_and_specials_dropped():
    tok = Tokenizer.byte_level()
    text = "déf f(x):\n\treturn '😀 漢字'\r\n"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode([tok.mask_id, *ids, tok.pad_id]) == text
    assert b"".join(tok.token_bytes(i) for i in ids) == text.encode()


def test_ids_starting_with():
    tok = Tokenizer.byte_level()
    ids = tok.ids_starting_with(b"a")
    assert [tok.token_bytes(i) for i in ids] == [b"a"]
    assert tok.special_ids.isdisjoint(tok.ids_starting_with(b""))
    assert len(tok.ids_starting_with(b"")) == 256
