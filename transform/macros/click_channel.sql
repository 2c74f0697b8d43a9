{#-
  The channel of a lead that has no journey, from the first click id it carries in this
  order: an ad click id says which network sent the visitor, and that it was a paid click.
  A browser or analytics id (fbp, cid, ...) says nothing about the channel.
-#}
{% macro click_channels() %}
  {{ return([
    ('gclid', 'google', 'cpc'),
    ('gbraid', 'google', 'cpc'),
    ('wbraid', 'google', 'cpc'),
    ('dclid', 'google', 'display'),
    ('msclkid', 'bing', 'cpc'),
    ('fbc', 'facebook', 'cpc'),
    ('ttclid', 'tiktok', 'cpc'),
    ('li_fat_id', 'linkedin', 'cpc'),
  ]) }}
{% endmacro %}

{#- The source (`part` 1) or medium (`part` 2) the click ids give; null without one. -#}
{% macro click_channel(part) %}
  case
  {%- for key, source, medium in click_channels() %}
    when {{ key }} is not null then '{{ [none, source, medium][part] }}'
  {%- endfor %}
  end
{% endmacro %}
