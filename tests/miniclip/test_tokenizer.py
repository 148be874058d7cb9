from photosearch.miniclip.tokenizer import WordTokenizer, split_words


def test_split_lowercases_and_separates_punctuation():
    assert split_words("A Dog, running!") == ["a", "dog", ",", "running", "!"]


def test_vocabulary_by_frequency_with_limit_and_unknown_words():
    tok = WordTokenizer.build(["a dog", "a cat", "a dog runs"], max_words=5, max_len=4)
    assert tok.itos[:5] == ["<pad>", "<unk>", "<cls>", "a", "dog"]
    assert len(tok) == 5
    assert tok.encode("a zebra") == [3, 1]
    ids, lengths = tok.batch(["a dog a dog a dog", "dog"])
    assert ids.shape == (2, 4) and lengths.tolist() == [4, 1] and ids[1, 1:].tolist() == [0, 0, 0]


def test_round_trip_through_dict():
    tok = WordTokenizer.build(["red circle", "blue square"], max_len=8)
    again = WordTokenizer.from_dict(tok.to_dict())
    assert again.itos == tok.itos and again.max_len == 8
