"""Is a text a wall in front of an article rather than the article?

Pure stage. A wall is a page whose text, beyond its headline, is an instruction to the visitor
(pass a bot check, turn off the ad blocker, accept cookies, register, log in, subscribe) and
carries no report. The text is cut into units (lines, then sentences) and each unit is judged:

- a *wall* unit holds wall vocabulary (data below, per kind, in en/de/fr/es/it/pl/ru/zh and some
  pt/nl/tr) and either speaks to the visitor ("you", "Sie", "vous", "您", imperatives, "please",
  or the site and page speaking of themselves: "we and our partners", "this article") or is a
  button-sized line ("Accept all", "微信登录") or is dense with that vocabulary ("Dostęp premium
  od 9,90 zł miesięcznie."); a quoted IP address alone is enough;
- a *neutral* unit is the headline, a form label, a newsletter prompt and the lines it drags
  along ("Enter your email", "you can unsubscribe at any time"), or a short sentence, or one
  that speaks to the visitor, that reports nothing (no number, no two-word name);
- every other unit of five words or more is *content*: a report.

A text is a wall when wall units outweigh content (letters) and there is little content; when
a short teaser is followed by at least two paywall, registration or ad-blocker lines and no
report; or when nothing but the headline and a wall or newsletter prompt is left. A real
article that mentions cookies or subscriptions speaks about them, not to the visitor, and
reports. Measured per language on the project's wall sets (docs/BENCHMARKS.md, "Walls").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["WALL_KINDS", "is_not_an_article", "wall_kind"]

# Texts longer than this are articles whatever they say: walls are a few hundred words at most.
MAX_WALL_WORDS = 600
# Wall units' share of the letters of wall and content units from which a text is a wall...
WALL_SHARE = 0.5
# ...as long as the content beside them is no longer than a lead paragraph.
MAX_CONTENT_WORDS = 120
# A paywall, registration or ad-blocker notice often follows a teaser: a lower share suffices
# when the teaser is short.
TEASER_SHARE = 0.2
MAX_TEASER_WORDS = 80
# Units shorter than this are labels and buttons, never content...
MIN_CONTENT_WORDS = 5
# ...and units this long are content even when they name nothing and count nothing.
MIN_PLAIN_CONTENT_WORDS = 12
# A sentence with a wall term every five words is a notice even when it does not address the
# visitor ("Dostęp premium od 9,90 zł miesięcznie.").
MAX_WORDS_PER_DENSE_TERM = 5
# A unit longer than this many words per wall term is not a notice.
MAX_WORDS_PER_WALL_TERM = 25
# A line this short holding wall vocabulary is a button or a form label ("Accept all"), unless
# it ends like a sentence or names someone ("Doch Präsident Erdogan akzeptiert nicht.").
MAX_BUTTON_WORDS = 6
MAX_DOTTED_BUTTON_WORDS = 3


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


# An IPv4 or IPv6 address quoted to the visitor.
_IP_PATTERN = (
    r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)|(?<![\w:])[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){3,7}"
)


def _alternatives(lines: str) -> str:
    """One alternation from alternatives written " | "-separated over lines."""
    return "|".join(a.strip() for a in lines.replace("\n", " | ").split(" | ") if a.strip())


# Wall vocabulary per kind. Latin and Cyrillic terms start at a word boundary and may take any
# ending (stems such as "abonn" cover abonné, abonnez-vous, abonnement); Chinese terms match
# anywhere. Written from public sites' walls; a term here only counts in a unit addressed to
# the visitor or in a button-sized line, so common words ("account", "browser") are safe.
_VOCABULARY: Mapping[str, tuple[str, ...]] = {
    "bot_check": (
        # en
        _alternatives(
            r"""
            robots?\b | bots?\b | captcha | recaptcha | hcaptcha | human\b
            unusual (?:traffic|activity) | automated (?:requests|queries|traffic|access)
            suspicious (?:activity|traffic) | security (?:check|verification)
            checking (?:your browser|if the site) | access (?:denied|blocked|restricted) | ray id
            cloudflare | ddos | javascript | press and hold | ip address
            reference (?:number|id|#) | request id | verify you | (?:don't|do not) have permission
            on this server | connection is secure | temporarily (?:blocked|restricted)
            too many requests | (?:that )?you are (?:a )?(?:human|person)
            """
        ),
        # de, fr, es, it, pt, nl
        _alternatives(
            r"""
            roboter | mensch\b | ip-adresse | ungewöhnlich | sicherheitsüberprüfung
            zugriff verweigert | automatisierte | überprüf\w* ihr | ihre anfrage wird | humain
            adresse ip | trafic inhabituel | vérification | accès (?:refusé|bloqué)
            requêtes automatisées | activité suspecte | votre navigateur | humano | dirección ip
            tráfico inusual | comprobando | verificando | acceso (?:denegado|bloqueado)
            actividad sospechosa | programa automático | umano | indirizzo ip | traffico insolito
            verifica di sicurezza | accesso (?:negato|bloccato) | il tuo browser | endereço ip
            não (?:é|sou) um robô | ik ben geen robot | ip-adres | zu viele anfragen
            kein (?:roboter|bot|automatisiert) | trop de requêtes | une personne
            demasiadas (?:peticiones|solicitudes) | una persona | troppe richieste
            numero elevato di richieste | richiesta bloccata | bloccat\w* la (?:tua )?connessione
            """
        ),
        # pl, ru, tr
        _alternatives(
            r"""
            robotem | adres\w* ip | odnotowaliśmy | połączeń | weryfikacj
            sprawdzanie przeglądarki | przeglądark | odmowa dostępu
            podejrzan\w* (?:ruch|liczb|aktywn) | робот | ip-адрес | подозрительн
            проверка браузера | капч | доступ (?:ограничен|запрещ) | автоматическ\w* запрос
            ваше соединение | robot değilim | ip adresi | nietypowy ruch | człowiek
            zbyt wiele (?:zapytań|żądań) | automat | слишком (?:много|часто) | вы человек
            система защиты | ограничил\w* доступ
            """
        ),
        # zh
        r"机器人|验证码|滑块|人机验证|安全检查|安全验证|访问验证|访问过于频繁|异常流量|真人|IP地址|当前IP",
        _IP_PATTERN,
    ),
    "ad_blocker": (
        _alternatives(
            r"""
            ad ?block | ad-block | blocking ads | block(?:ing)? ads | whitelist | allowlist
            allow ads | ads? (?:help|pay|fund|support) | ad-free
            advertising (?:helps|funds|supports|pays) | werbeblocker
            werbung (?:finanzier|ermöglich) | ausnahmeliste | werbefrei | bloqueur | liste blanche
            sans pub | la publicité nous | bloqueador | sin publicidad
            lista (?:blanca|de sitios permitidos) | permite los anuncios | la publicidad nos
            blocco (?:degli )?(?:annunci|pubblicità) | blocca\w* (?:la )?pubblicità
            senza pubblicità | consenti (?:gli )?annunci | la pubblicità ci
            bloqueador de anúncios | sem anúncios | advertentieblokker | blok\w* reklam
            bez reklam | zezwól na reklam | reklamy pozwalają | blokujesz | блокировщик
            блокирует\w* реклам | без рекламы | разрешите показ | реклама помогает
            reklam engelleyici
            """
        ),
        r"广告拦截|广告屏蔽|屏蔽广告|拦截广告|白名单|去广告|无广告|AdBlock|Adblock",
    ),
    "consent": (
        _alternatives(
            r"""
            cookies? | consent | privacy | (?:our|\d+) partners | vendors | personal data
            legitimate interest | preferences | accept(?: all)?\b | reject(?: all)?\b
            manage (?:options|choices|settings|cookies) | unique identifiers | geolocation
            personali[sz]ed (?:ads|advertising|content) | einwillig | zustimm | datenschutz
            privatsphäre | personenbezogen | unsere partner | akzeptier | ablehnen | drittanbieter
            berechtigt\w* interesse | traceurs | consentement | vie privée | données personnelles
            nos (?:\d+ )?partenaires | intérêt légitime | j'accepte | tout accepter | tout refuser
            paramétrer | personnaliser | confidentialité | consentimiento | privacidad
            datos personales | nuestros socios | interés legítimo | aceptar | rechazar | configurar
            preferencias | consenso | dati personali | i nostri partner | legittimo interesse
            accetta | rifiuta | personalizza | preferenze | informativa | privacidade
            dados pessoais | aceitar | toestemming | ciasteczk | prywatnoś | dan\w* osobow
            nasi partnerzy | zgod\w* | zgadzam | akceptuj | zaakceptuj | odrzuć | куки
            персональн\w* данн | конфиденциальн | соглас | принять | отклонить | наши партнеры
            çerez
            """
        ),
        r"隐私|个人信息|同意|全部接受|接受并|接受所有|拒绝|合作伙伴|个性化广告|[Cc]ookie",
    ),
    "registration": (
        _alternatives(
            r"""
            regist | sign ?up | sign ?in | log ?in | create (?:a |an |your )?(?:free )?account
            (?:create|free|have an?|your|new|existing) account | password | email address
            your email | keep reading | continue reading | read (?:\d+|more|this)
            continue with (?:google|facebook|apple)
            with (?:google|facebook|apple|microsoft|linkedin) | free stories | anmeld | angemeldet
            melden sie sich | loggen sie sich | pflichtfeld
            einlogg | eingeloggt | konto | passwort | e-mail | kostenlos | vorteile | weiterlesen
            mit (?:google|apple|facebook) | inscri | compte | mot de passe | adresse e-mail
            gratuit | identifiez | connectez | se connecter | lire la suite
            avec (?:google|facebook|apple) | cuenta | contraseña | correo electrónico | gratis
            seguir leyendo | continuar leyendo | inicia sesión | iniciar sesión | identifícate
            con (?:google|facebook|apple) | regístr | registra | password | continuare a leggere
            accedi | effettua il login | iscriv | login | zarejestr | rejestracja (?:jest|zajmie)
            rejestruj | konto | konta | hasł | adres e-mail | bezpłatn | za darmo | darmow
            czytaj dalej | zalog | przez (?:google|facebook) | entrar com | cadastr | inloggen
            регистр | зарегистр | аккаунт | пароль | электронн\w* почт | бесплатн | читать дальше
            войдите | войти | авториз | вход через | через (?:яндекс|вконтакте|google)
            """
        ),
        r"注册|账号|帐号|密码|验证码|手机号|继续阅读|阅读全文|登录|第三方账号|微信登录|QQ登录",
    ),
    "paywall": (
        _alternatives(
            r"""
            subscri | free articles? | (?:full|unlimited) access | [$€£]\s?\d+(?:[.,]\d\d)?
            \d+(?:[.,]\d\d)?\s?(?:€|zł|₽|руб|\$) | unlimited (?:digital )?access | free trial
            cancel anytime | membership | become a member | premium | paywall
            (?:per|a) (?:week|month)\b | /month | abonn | abo\b | -abo | kostenlosen artikel
            unbegrenzt | kündbar | zum angebot | testen | articles? (?:gratuits|offerts)
            accès illimité | résiliable | sans engagement | voir les offres | par mois
            réservée? à nos abonnés | il vous reste | \d+ ?% (?:à découvrir|restant|remaining|left)
            suscri | suscrí | artículos gratuitos | acceso ilimitado | cancela cuando | ver planes
            al mes\b | abbona | articoli gratuiti | accesso illimitato | disdic | al mese\b
            riservato agli | assin | prenumerat | subskryp | abonament | nieograniczon
            bezpłatnych artykułów | limit bezpłatnych | miesięcznie | zrezygnować | zobacz ofert
            подписк | подписчик | оформите | бесплатные статьи | неограниченный доступ | в месяц
            выбрать тариф | abone
            """
        ),
        r"订阅|付费|会员|免费文章|首月|每月|开通",
    ),
}
WALL_KINDS: tuple[str, ...] = tuple(_VOCABULARY)
_KIND_PATTERNS: Mapping[str, re.Pattern[str]] = {
    kind: re.compile(
        "|".join(
            # Latin and Cyrillic alternatives must start a word; the Chinese ones need not.
            f"(?:{alternatives})" if _CJK.match(alternatives) else f"(?<!\\w)(?:{alternatives})"
            for alternatives in patterns
        ),
        re.IGNORECASE,
    )
    for kind, patterns in _VOCABULARY.items()
}
# Gated kinds: the teaser case (a lead paragraph, then the notice).
_GATED = frozenset({"paywall", "registration", "ad_blocker"})
_IP_ADDRESS = re.compile(_IP_PATTERN, re.IGNORECASE)

# The visitor addressed: second person, polite imperatives, "please", in many languages. Short
# words shared with other languages (du, ta, te, ci, sei, my) are left out. Spanish enclitic
# imperatives (regístrate, suscríbase, registrarte) count, listed: an accent before -se/-te is
# French too (précise). English and Chinese instructions start with the verb ("Open the
# settings menu").
_ADDRESS = re.compile(
    _alternatives(
        r"""
        (?<!\w)(?:you|your|yours|you're|you've|yourself|please|click|tap)(?!\w)
        (?<!\w)(?:dich|dein\w*|bitte|klicken)(?!\w)
        (?<!\w)(?:vous|votre|vos|merci de|veuillez|cliquez)(?!\w)
        (?<!\w)(?:usted\w*|tu|tus|ti|por favor|haz clic|pulsa|puedes|tienes|estás|eres)(?!\w)
        (?<!\w)(?:regístr|suscríb|identifíc|identifíqu|conéct|apúnt|ún)(?:a|e)(?:te|se)(?!\w)
        (?<!\w)(?:hazte|marca|completa|resuelve|demuestra|acepta|desactiva|añade)(?!\w)
        \w{3,}(?:ar|er|ir)te(?!\w)
        (?<!\w)sus? (?:bloqueador|navegador|dispositivo|privacidad|consentimiento|configuración)
        (?<!\w)(?:desactive|active|habilite|acepte|compre|siga|haga clic|pulse|introduzca)(?!\w)
        (?<!\w)(?:ingrese|crea|inicia|accede|entra)(?!\w)
        (?<=, )(?:become|subscribe|sign|log|register|join|click|tap|enter|disable|turn)\b
        (?<!\w)(?:iscriviti|accedi|collegati|disattiva|consenti|completa|seleziona|risolvi)(?!\w)
        (?<!\w)(?:dimostra|aggiungi|scegli|scrivi)(?!\w)
        (?<!\w)(?:tuo|tua|tuoi|tue|per favore|clicca|puoi|hai|vuoi)(?!\w)
        (?<!\w)(?:você|seu|sua|clique|jouw|uw|lütfen)(?!\w)
        (?<!\w)(?:ty|twój|twoj\w*|twoją|cię|prosimy|kliknij|zaznacz|możesz|masz)(?!\w)
        (?<!\w)(?:jesteś|wyłącz|włącz|zaloguj|państw\w*|rozwiąż|potwierdź|dodaj|wybierz)(?!\w)
        (?<!\w)(?:napisz|zaakceptuj|załóż|zyskaj|czytaj|sprawdź|skorzystaj|kup|wykup)(?!\w)
        (?<!\w)(?:odśwież|zarejestruj|przejdź|poznaj|dołącz|zapisz)(?!\w)
        (?<!\w)(?:вы|вас|вам|ваш\w*|ты|тебя|твой\w*|пожалуйста|нажмите)(?!\w)
        \w(?:йте|ите|итесь|йтесь)(?!\w)
        您 | 你 | (?<![申邀提聘宴])请(?![求示愿假柬])
        ^(?:open|choose|select|enable|disable|go to|check|uncheck|tap|press|allow)\b
        ^(?:turn (?:off|on)|follow|enter|type|refresh|reload|continue|sign|log|register)\b
        ^(?:subscribe|accept|reject|keep|get|start|try|join|read)\b
        ^(?:单击|点击|打开|选择|启用|取消选中|关闭|登录|注册|订阅)
        """
    ),
    re.IGNORECASE,
)
# German addresses the visitor as "Sie" (capitalised); lower-case "sie", "ihr" are she, they,
# her, their.
_SIE = re.compile(r"(?<!\w)(?:Sie|Ihr\w*|Ihnen)(?!\w)")
# The site speaking of itself or of the page ("we and our partners", "this site uses", "this
# article is for subscribers"): walls do, reports about sites speak of them in the third
# person. "we" only before a verb (Polish "we wtorek" is "on Tuesday"); Chinese quotes use 我们
# too often, so only the site naming itself counts there.
_SITE_VOICE = re.compile(
    _alternatives(
        r"""
        (?<!\w)(?:this (?:article|content|story|page)|cet article|ce contenu)(?!\w)
        (?<!\w)(?:dieser (?:artikel|beitrag|inhalt)|este (?:contenido|artículo))(?!\w)
        (?<!\w)(?:questo (?:articolo|contenuto)|ten (?:artykuł|materiał)|этот материал)(?!\w)
        (?<!\w)(?:эта статья|our|this (?:web)?site|wir|unser\w*|uns|diese (?:web)?seite)(?!\w)
        (?<!\w)(?:nous|nos|notre|ce site|nosotros|nuestr\w*|este sitio|noi|nostr\w*)(?!\w)
        (?<!\w)(?:questo sito|nasz\w*|nasi|ta strona|мы|нас|наш\w*|этот сайт|nós|nosso\w*)(?!\w)
        (?<!\w)(?:este site|wij|onze)(?!\w) | (?<!\w)we(?:'ve|'re| \w+(?:e|ed|d|s)\b)
        本文 | 该内容 | 此内容 | 本站 | 本网站
        """
    ),
    re.IGNORECASE,
)
# Newsletter prompts sit beside real articles: chrome, never a wall by themselves.
_NEWSLETTER = re.compile(
    _alternatives(
        r"""
        newsletter | nieuwsbrief | boletín | infolettre | lettre d'information | biuletyn
        рассылк | bülten | alertas? (?:de|por) correo | e-?mail alerts | inbox
        (?:breaking )?news alerts | daily briefing | podcast
        新闻简报 | 邮件订阅 | 电子报 | 时事通讯 | 邮件提醒 | 电子邮件警报
        """
    ),
    re.IGNORECASE,
)
# A report names things and counts them: a number, or a name of two capitalised words inside
# a sentence (one is not enough: German capitalises every noun).
_CAPITALISED = r"[A-ZÀ-ÞА-ЯЁ][\w'’-]*[a-zà-ÿа-яё]"
_REPORTING = re.compile(
    rf"(?<!\w)\d[\d.,:]*(?!\w)|\d+(?:%|°|€|\$|年|月|日)|(?<=[\w,;:] ){_CAPITALISED} {_CAPITALISED}"
)
_LETTER = re.compile(r"[^\W\d_]")
_LATIN_WORD = re.compile(r"[^\W\d_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")
# Sentences end at . ! ? … before a space, or after Chinese full stops; not after a one-letter
# abbreviation ("z. B.") nor before a lower-case word ("np. pliki").
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<![\s(]\w\.)\s+(?=[^a-zà-ÿа-яё])|(?<=[。！？])")
_SENTENCE_FINAL = re.compile(r"[.!?…。！？:\"”»)]\s*$")


def _words(unit: str) -> float:
    """Words, counting two Chinese or Japanese characters as one."""
    return len(_LATIN_WORD.findall(unit)) + len(_CJK.findall(unit)) / 2


def _units(text: str) -> list[str]:
    units = []
    for line in text.split("\n"):
        units.extend(u.strip() for u in _SENTENCE_END.split(line) if u.strip())
    return units


def _has_headline(text: str) -> bool:
    """The first line is a headline: short, not a sentence, and more text follows."""
    first, _, rest = text.strip().partition("\n")
    return bool(rest.strip()) and _words(first) <= 40 and not _SENTENCE_FINAL.search(first)


def _addressed(unit: str) -> bool:
    return bool(_ADDRESS.search(unit) or _SIE.search(unit) or _SITE_VOICE.search(unit))


def _is_button(unit: str, words: float) -> bool:
    # Flattened pages end buttons with a full stop too ("Weiter mit Google.").
    ends_like_sentence = unit.endswith(".") and words > MAX_DOTTED_BUTTON_WORDS
    return words <= MAX_BUTTON_WORDS and not ends_like_sentence and not _REPORTING.search(unit)


def _wall_kind_of(unit: str, words: float) -> str | None:
    """The kind of wall a unit belongs to, if it is a wall unit."""
    found = Counter(
        kind for kind, pattern in _KIND_PATTERNS.items() for _ in pattern.finditer(unit)
    )
    terms = sum(found.values())
    # A long run of text with one wall word is a report (or paragraphs run together), not a
    # notice: notices are dense with their vocabulary.
    if not terms or terms < words / MAX_WORDS_PER_WALL_TERM:
        return "bot_check" if _IP_ADDRESS.search(unit) else None
    dense = terms >= 2 and terms * MAX_WORDS_PER_DENSE_TERM >= words
    if not (dense or _addressed(unit) or _is_button(unit, words)):
        return "bot_check" if _IP_ADDRESS.search(unit) else None
    return found.most_common(1)[0][0]


class _Unit(NamedTuple):
    text: str
    words: float
    role: str  # a wall kind, "content", "newsletter" or "neutral"


def _judge_units(text: str) -> list[_Unit]:
    """Each unit of the text after its headline, with its role."""
    units = _units(text)
    if _has_headline(text):
        units = units[1:]
    judged = []
    in_newsletter = False
    for unit in units:
        words = _words(unit)
        if _NEWSLETTER.search(unit):
            role = "newsletter"
            in_newsletter = True  # the prompt's form lines and fine print follow it
        elif (kind := _wall_kind_of(unit, words)) is not None:
            role = "neutral" if in_newsletter else kind
        elif words < MIN_CONTENT_WORDS:
            role = "neutral"
        elif not _REPORTING.search(unit) and (words < MIN_PLAIN_CONTENT_WORDS or _addressed(unit)):
            role = "neutral"  # a short line, or speaks to the visitor, and reports nothing
        else:
            role = "content"
            in_newsletter = False
        judged.append(_Unit(unit, words, role))
    return judged


def wall_kind(text: str) -> str | None:
    """The kind of wall ("bot_check", "ad_blocker", "consent", "registration", "paywall") the
    text is, if any. A first line that reads as a headline is not judged."""
    total_words = _words(text)
    if not total_words or total_words > MAX_WALL_WORDS:
        return None
    wall: Counter[str] = Counter()
    content_letters = 0
    content_words = 0.0
    newsletter = False
    content_after_gate = False  # a teaser precedes its paywall: no report follows it
    gate_units = 0  # a notice has several lines: one sentence is not a paywall
    for unit in _judge_units(text):
        if unit.role == "content":
            content_letters += len(_LETTER.findall(unit.text))
            content_words += unit.words
            if any(k in _GATED for k in wall) and _REPORTING.search(unit.text):
                content_after_gate = True
        elif unit.role in _KIND_PATTERNS:
            wall[unit.role] += len(_LETTER.findall(unit.text))
            gate_units += unit.role in _GATED
        newsletter = newsletter or unit.role == "newsletter"
    if content_words < MIN_CONTENT_WORDS and (wall or newsletter):
        # Nothing but the headline and a notice: the article is behind it.
        return wall.most_common(1)[0][0] if wall else "registration"
    if not wall:
        return None
    wall_letters = sum(wall.values())
    share = wall_letters / (wall_letters + content_letters)
    kind = wall.most_common(1)[0][0]
    if share >= WALL_SHARE and content_words <= MAX_CONTENT_WORDS:
        return kind
    gated = {k: n for k, n in wall.items() if k in _GATED}
    if gate_units >= 2 and content_words <= MAX_TEASER_WORDS and not content_after_gate:
        gated_share = sum(gated.values()) / (wall_letters + content_letters)
        if gated_share >= TEASER_SHARE:
            return max(gated, key=gated.__getitem__)
    return None


def is_not_an_article(text: str) -> bool:
    """True for bot checks, ad-blocker notices, consent walls, registration walls, paywalls."""
    return wall_kind(text) is not None
