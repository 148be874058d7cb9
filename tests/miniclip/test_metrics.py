import numpy as np

from photosearch.miniclip.metrics import image_to_text_ranks, random_baseline, retrieval_metrics, text_to_image_ranks


def naive_t2i(sim, owners):
    ranks = []
    for q in range(sim.shape[0]):
        order = sorted(range(sim.shape[1]), key=lambda i: -sim[q, i])
        ranks.append(order.index(owners[q]) + 1)
    return np.array(ranks)


def naive_i2t(sim, owners):
    ranks = []
    for img in range(sim.shape[1]):
        order = sorted(range(sim.shape[0]), key=lambda c: -sim[c, img])
        ranks.append(min(order.index(c) for c in range(sim.shape[0]) if owners[c] == img) + 1)
    return np.array(ranks)


def test_ranks_match_naive_reference_on_seeded_random_embeddings():
    rng = np.random.default_rng(0)
    images, texts = rng.standard_normal((40, 16)), rng.standard_normal((120, 16))
    owners = np.repeat(np.arange(40), 3)
    sim = texts @ images.T
    assert (text_to_image_ranks(sim, owners) == naive_t2i(sim, owners)).all()
    assert (image_to_text_ranks(sim, owners) == naive_i2t(sim, owners)).all()


def test_summary_values_from_known_ranks():
    sim = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.5, 0.4, 0.3]])  # third caption's image ranks 3rd
    metrics = retrieval_metrics(sim, np.array([0, 1, 2]))
    t2i = metrics["t2i"]
    assert abs(t2i["R@1"] - 200 / 3) < 1e-9
    assert t2i["R@5"] == 100.0
    assert abs(t2i["MRR"] - (1 + 1 + 1 / 3) / 3) < 1e-9
    assert t2i["MedR"] == 1.0


def test_perfect_embeddings_score_full_recall_and_random_scores_near_chance():
    owners = np.repeat(np.arange(50), 2)
    sim = (owners[:, None] == np.arange(50)[None, :]).astype(float)
    perfect = retrieval_metrics(sim, owners)
    assert perfect["t2i"]["R@1"] == 100.0 and perfect["i2t"]["MedR"] == 1.0
    rand = random_baseline(owners, 50)
    assert rand["t2i"]["R@1"] < 10 and 15 < rand["t2i"]["MedR"] < 35


def test_restrict_scores_the_kept_photos_against_each_other_alone():
    from photosearch.miniclip.evaluation import restrict

    rng = np.random.default_rng(3)
    owner = np.repeat(np.arange(6), 2)  # 12 captions, 2 a photo
    sim = rng.standard_normal((12, 6))
    sub, sub_owner = restrict(sim, owner, np.array([1, 4, 5]))
    rows = [i for i, o in enumerate(owner) if o in (1, 4, 5)]
    assert np.array_equal(sub, sim[rows][:, [1, 4, 5]])
    assert sub_owner.tolist() == [0, 0, 1, 1, 2, 2]


def test_colour_queries_are_the_captions_naming_a_colour():
    from photosearch.miniclip.colour_words import colour_query_rows

    captions = ["A man in a RED shirt.", "a dog runs", "black-and-white dog", "a redwood tree", "two grey cats"]
    assert colour_query_rows(captions).tolist() == [0, 2, 4]
